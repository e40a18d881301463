"""The SHA-256 of a file: a photo's identity, an archive's check."""

import hashlib
from pathlib import Path

from transfer.errors import PipelineError

CHUNK_BYTES = 1 << 20  # read at a time, so that memory does not grow with the file


def sha256_of(path: Path) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def unchanged_bytes(file: Path, sha256: str) -> bytes:
    """The bytes of a photo of data/raw, read once, which must still be those split saw (their
    SHA-256 `sha256`): else a one-line error."""
    data = file.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise PipelineError(f"{file} changed since the split; run `dvc repro`")
    return data
