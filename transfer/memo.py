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

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import stat
import struct
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from transfer.errors import run_main

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


def source_version(*files: str | Path) -> str:
    """A version of the code that computes a result: the hash of its source files."""
    digest = hashlib.sha256()
    for file in files:
        digest.update(Path(file).read_bytes())
    return digest.hexdigest()


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


def entries(root: Path) -> list[tuple[Path, os.stat_result]]:
    """Every file under the memo's root, with its stat: entries and leftover temporaries."""
    found = []
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):  # removed meanwhile
            info = path.stat()
            if stat.S_ISREG(info.st_mode):
                found.append((path, info))
    return found


def prune(root: Path, max_bytes: int, now: float | None = None) -> tuple[int, int]:
    """Delete the least recently used entries until the memo holds at most `max_bytes`, and
    temporaries left by a killed writer an hour old or more; (files deleted, bytes freed)."""
    now = time.time() if now is None else now
    files = sorted(entries(root), key=lambda item: item[1].st_mtime)
    total = sum(info.st_size for _, info in files)
    deleted = freed = 0
    for path, info in files:
        stale = path.name.endswith(TEMPORARY_SUFFIX) and now - info.st_mtime >= 3600
        if total - freed <= max_bytes and not stale:
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted += 1
            freed += info.st_size
    return deleted, freed


def parse_size(text: str) -> int:
    """Bytes from a size such as 500M, 20G or 1.5T (or plain bytes)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().removesuffix("B")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 20G)") from None


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="memo", description="The per-image memo: its size, or prune or clear it."
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--prune", type=parse_size, metavar="SIZE", help="keep at most SIZE")
    action.add_argument("--clear", action="store_true", help="delete every entry")
    args = parser.parse_args()
    root = memo_dir()
    if root is None:
        print(f"the memo is off ({MEMO_ENV}={OFF})")
        return
    if args.clear and root.exists():
        shutil.rmtree(root)
    elif args.prune is not None and root.exists():
        deleted, freed = prune(root, args.prune)
        print(f"deleted {deleted} entries, {freed / 2**20:.1f} MiB")
    files = entries(root) if root.exists() else []
    spaces: dict[str, list[int]] = {}
    for path, info in files:
        space = spaces.setdefault(path.relative_to(root).parts[0], [0, 0])
        space[0] += 1
        space[1] += info.st_size
    total = sum(size for _, size in spaces.values())
    print(f"{root}: {sum(n for n, _ in spaces.values())} entries, {total / 2**20:.1f} MiB")
    for name, (count, size) in sorted(spaces.items()):
        print(f"  {name}: {count} entries, {size / 2**20:.1f} MiB")


def cli() -> None:
    """The `memo` console script."""
    run_main(main)
