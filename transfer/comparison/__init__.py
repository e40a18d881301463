"""Whether one experiment beats another: paired tests on the same test photos (`compare`)."""
