"""Getting the user's photos in: download, archives, image checks, the import into data/raw."""
