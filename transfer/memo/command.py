"""The `memo` command: the memo's size, and pruning or clearing it."""

import argparse
import contextlib
import os
import shutil
import stat
import time
from pathlib import Path

from transfer.errors import run_main
from transfer.memo.store import MEMO_ENV, OFF, TEMPORARY_SUFFIX, memo_dir


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
