"""The per-image memo: results of per-image work (a photo's check, its resized JPEG, its
features, its fine-tune activations) kept by the content and settings that shape them, so
that after a data change only new or changed photos are computed again.

An accelerator, never the truth: a run with it empty, or off, writes the same bytes.
- Keys are hashes of everything that shapes a result: the input's bytes (or their hash),
  the params that matter and a version of the code and libraries that compute it (`key`).
- Entries are files named by their key, written to a temporary name and renamed, so a
  reader sees a whole entry or none, and two writers of one key (queued experiments) write
  the same bytes. Each carries its length and a CRC-32 of its payload: a truncated or
  overwritten entry reads as a miss and is computed again. No fsync: an entry torn by a
  power cut fails its check the same way.
- It lives outside DVC's outputs: in `.memo/` at the project's root (for a queued
  experiment, the repo it was queued from, which DVC names in DVC_ROOT), or where
  TRANSFER_MEMO says (`off` turns it off). The `memo` command says its size and prunes or
  clears it; an entry read is touched, so pruning drops the least recently used first.
"""

import contextlib
import hashlib
import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

MEMO_ENV = "TRANSFER_MEMO"
OFF = "off"
DEFAULT_DIR = ".memo"
DVC_ROOT_ENV = "DVC_ROOT"  # set by DVC for a stage's command: the repo's root
MAGIC = b"TRMEMO1\n"
HEADER = struct.Struct("<8sQI")  # magic, payload length, CRC-32 of the payload
TEMPORARY_SUFFIX = ".tmp"


def key(*parts: object) -> str:
    """The hex SHA-256 of the parts (JSON values: strings, numbers, lists, dicts)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Memo:
    """Entries under `root`, by namespace and key; `root` None: off (every get misses)."""

    root: Path | None

    def _path(self, namespace: str, entry_key: str) -> str:
        # Joined as text: a run looks up tens of thousands of entries.
        return os.path.join(self.root, namespace, entry_key[:2], entry_key)

    def get(self, namespace: str, entry_key: str) -> bytes | None:
        """The payload of a whole, checked entry, or None."""
        if self.root is None:
            return None
        path = self._path(namespace, entry_key)
        try:
            with open(path, "rb") as file:
                data = file.read()
        except OSError:
            return None
        with contextlib.suppress(OSError):  # its time of use, for `memo prune`
            os.utime(path)
        if len(data) < HEADER.size:
            return None
        magic, length, checksum = HEADER.unpack_from(data)
        payload = data[HEADER.size :]
        if magic != MAGIC or length != len(payload) or zlib.crc32(payload) != checksum:
            return None
        return payload

    def has(self, namespace: str, entry_key: str) -> bool:
        """Whether an entry is there (not checked: get() checks it)."""
        return self.root is not None and os.path.isfile(self._path(namespace, entry_key))

    def put(self, namespace: str, entry_key: str, payload: bytes) -> None:
        """Store an entry: written to a temporary name beside it, then renamed."""
        if self.root is None:
            return
        path = Path(self._path(namespace, entry_key))
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent
        )
        header = HEADER.pack(MAGIC, len(payload), zlib.crc32(payload))
        try:
            os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide it from a team sharing it
            with os.fdopen(handle, "wb") as file:
                file.write(header)
                file.write(payload)
            os.replace(name, path)
        except OSError as error:  # named: a failed write's error names no file
            Path(name).unlink(missing_ok=True)
            raise OSError(error.errno, error.strerror, error.filename or name) from None
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise


NO_MEMO = Memo(None)  # the memo off: every look-up misses, nothing is stored


@dataclass
class MemoCount:
    """Results taken from the memo, and results computed (and stored)."""

    reused: int = 0
    computed: int = 0

    def add(self, other: "MemoCount") -> None:
        self.reused += other.reused
        self.computed += other.computed


def memo_dir() -> Path | None:
    """Where the memo lives: TRANSFER_MEMO, else .memo/ at the project's root; None if off."""
    configured = os.environ.get(MEMO_ENV, "").strip()
    if configured.lower() == OFF:
        return None
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get(DVC_ROOT_ENV) or ".") / DEFAULT_DIR


def open_memo() -> Memo:
    """The project's memo, as memo_dir() places it."""
    return Memo(memo_dir())
