"""The SHA-256 of a file: a photo's identity, an archive's check."""

import hashlib
from pathlib import Path

CHUNK_BYTES = 1 << 20  # read at a time, so that memory does not grow with the file


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
