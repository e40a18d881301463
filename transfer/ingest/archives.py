"""List the files of a local folder or archive, refusing archive entries that are unsafe."""

import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from transfer.errors import PipelineError

TAR_SUFFIXES = (".tgz", ".tar.gz", ".tar", ".tar.bz2", ".tar.xz")
# What Entry.read raises for a damaged archive member or an unreadable file.
READ_ERRORS = (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, zlib.error)


@dataclass(frozen=True)
class Entry:
    """One regular file of a source, by its path components below the source's root."""

    parts: tuple[str, ...]
    read: Callable[[], bytes]


@dataclass
class Listing:
    """The files of a source, and the archive entries refused as unsafe with the reason."""

    entries: list[Entry] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


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
            listing.refused.append((member.name, unsafe))
        elif member.isfile():
            read = archive.extractfile(member).read  # type: ignore[union-attr]
            listing.entries.append(Entry(parts, read))
    return listing


def _list_zip(archive: zipfile.ZipFile) -> Listing:
    listing = Listing()
    for info in archive.infolist():
        parts, unsafe = _safe_parts(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            unsafe = "symbolic link"
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            unsafe = "device or special file"
        if unsafe:
            listing.refused.append((info.filename, unsafe))
        elif not info.is_dir():
            listing.entries.append(Entry(parts, lambda info=info: archive.read(info)))
    return listing


def _list_folder(root: Path) -> Listing:
    listing = Listing()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            listing.entries.append(Entry(path.relative_to(root).parts, path.read_bytes))
    return listing


def is_archive(path: Path) -> bool:
    """Whether the path's name ends in a supported archive suffix."""
    return path.name.lower().endswith((*TAR_SUFFIXES, ".zip"))


@contextmanager
def open_source(path: Path) -> Iterator[Listing]:
    """List a local folder or archive; the entries can be read until the block ends."""
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
            f"data.source {path} is neither a folder nor a .tgz/.tar.gz/.tar/.zip archive"
        )
