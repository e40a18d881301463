"""List the files of a local folder or archive, refusing entries that are unsafe.

Entries are opened, not read: `read_bounded` reads at most a given number of bytes, whatever
size an archive declares.
"""

import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from transfer.errors import PipelineError
from transfer.hashing import CHUNK_BYTES

TAR_SUFFIXES = (".tgz", ".tar.gz", ".tar", ".tar.bz2", ".tar.xz")
ZIP_UTF8_FLAG = 0x800  # general purpose bit 11: the name is UTF-8
ZIP_ENCRYPTED_FLAG = 0x1  # general purpose bit 0
# What reading an entry raises for a damaged archive member or an unreadable file;
# zipfile raises RuntimeError for an encrypted member and NotImplementedError for a
# compression method it lacks (Deflate64, say).
READ_ERRORS = (
    OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error, RuntimeError,
    NotImplementedError,
)  # fmt: skip


class TooLarge(Exception):
    """An entry holds more bytes than the limit it was read with."""


@dataclass(frozen=True)
class Entry:
    """One regular file of a source, by its path components below the source's root."""

    parts: tuple[str, ...]
    open: Callable[[], BinaryIO]


@dataclass
class Listing:
    """The files of a source, and the entries refused as unsafe (name, reason)."""

    entries: list[Entry] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def read_bounded(entry: Entry, limit: int) -> bytearray:
    """The entry's bytes, read in chunks into one buffer (no second copy); TooLarge as soon
    as there are more than `limit`."""
    data = bytearray()
    with entry.open() as file:
        while chunk := file.read(min(CHUNK_BYTES, limit + 1 - len(data))):
            data += chunk
            if len(data) > limit:
                raise TooLarge
    return data


def _safe_parts(name: str) -> tuple[tuple[str, ...], str | None]:
    """Split an archive entry name; the second value is why it is unsafe, or None."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return (), "absolute path"
    parts = tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
    if ".." in parts:
        return parts, "path leaves the archive (..)"
    return parts, None


def _list_tar(archive: tarfile.TarFile) -> Listing:
    listing = Listing()
    for member in archive.getmembers():
        parts, unsafe = _safe_parts(member.name)
        if member.issym():
            unsafe = "symbolic link"
        elif member.islnk():
            unsafe = "hard link"
        elif member.isdev():
            unsafe = "device or special file"
        if unsafe:
            listing.refused.append((member.name, f"unsafe archive entry: {unsafe}"))
        elif member.isfile():
            opener = lambda member=member: archive.extractfile(member)  # noqa: E731
            listing.entries.append(Entry(parts, opener))
    return listing


def _list_zip(archive: zipfile.ZipFile) -> Listing:
    listing = Listing()
    for info in archive.infolist():
        name = info.filename
        if not info.flag_bits & ZIP_UTF8_FLAG:
            # zipfile decodes such names as cp437, which turns UTF-8 names (many tools write
            # them without the flag) into mojibake; take the bytes as UTF-8, as for tar, so
            # that names in another encoding are skipped as not valid UTF-8.
            name = name.encode("cp437").decode("utf-8", "surrogateescape")
        parts, unsafe = _safe_parts(name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            unsafe = "symbolic link"
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            unsafe = "device or special file"
        if unsafe:
            listing.refused.append((name, f"unsafe archive entry: {unsafe}"))
        elif info.flag_bits & ZIP_ENCRYPTED_FLAG:
            listing.refused.append((name, "encrypted archive entry (no password is asked)"))
        elif not info.is_dir():
            listing.entries.append(Entry(parts, lambda info=info: archive.open(info)))
    return listing


def _list_folder(root: Path) -> Listing:
    """Every regular file below `root`, sorted by name at each level.

    One rule for symbolic links, to files and folders alike: a link whose target lies inside
    the source is followed; one that leaves it, is broken or loops is refused with the reason.
    """
    listing = Listing()
    inside = root.resolve()

    def refuse(parts: tuple[str, ...], reason: str) -> None:
        listing.refused.append(("/".join(parts), reason))

    def walk(folder: Path, parts: tuple[str, ...], ancestors: frozenset[Path]) -> None:
        try:
            children = sorted(folder.iterdir(), key=lambda path: path.name)
        except OSError as error:
            refuse(parts, f"cannot read folder ({error.strerror})")
            return
        for child in children:
            child_parts = (*parts, child.name)
            try:
                target = child.resolve(strict=True)
            except (OSError, RuntimeError):  # RuntimeError: a loop of links, on Python < 3.13
                refuse(child_parts, "broken symbolic link or link loop")
                continue
            if child.is_symlink() and not target.is_relative_to(inside):
                refuse(child_parts, "symbolic link to outside data.source")
            elif target.is_dir():
                if target in ancestors:
                    refuse(child_parts, "symbolic link loop")
                else:
                    walk(child, child_parts, ancestors | {target})
            elif target.is_file():
                listing.entries.append(Entry(child_parts, lambda path=child: path.open("rb")))
            else:
                refuse(child_parts, "device or special file")

    walk(root, (), frozenset({inside}))
    return listing


def is_archive(path: Path) -> bool:
    """Whether the path's name ends in a supported archive suffix."""
    return path.name.lower().endswith((*TAR_SUFFIXES, ".zip"))


@contextmanager
def open_source(path: Path) -> Iterator[Listing]:
    """List a local folder or archive; the entries can be opened until the block ends."""
    if path.is_dir():
        yield _list_folder(path)
    elif not path.exists():
        raise PipelineError(f"data.source {path} does not exist")
    elif is_archive(path):
        is_zip = path.name.lower().endswith(".zip")
        with ExitStack() as stack:
            try:
                if is_zip:
                    listing = _list_zip(stack.enter_context(zipfile.ZipFile(path)))
                else:
                    listing = _list_tar(stack.enter_context(tarfile.open(path)))
            except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
                kind = "zip" if is_zip else "tar"
                raise PipelineError(
                    f"data.source {path} is not a readable {kind} ({error})"
                ) from None
            yield listing
    else:
        raise PipelineError(
            f"data.source {path} is neither a folder nor a "
            f"{'/'.join((*TAR_SUFFIXES, '.zip'))} archive"
        )
