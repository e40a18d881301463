"""Import a source's usable images into <out>/<path>, each placed as its layout says, and report
what was skipped.

Memory is bounded by design: entries are read in chunks up to data.max_file_mb, at most that
many bytes wait to be checked beside the entry being read (so twice data.max_file_mb in all),
and the images being decoded hold at most data.max_pixels pixels together, whatever the
number of cores.
"""

import errno
import hashlib
import logging
import unicodedata
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import PIL
from tqdm import tqdm

from transfer.atomic import write_csv
from transfer.errors import PipelineError
from transfer.image_files import (
    ImageRejected,
    declared_pixels,
    decode_rgb,
    has_image_extension,
    is_hidden,
)
from transfer.ingest.archives import (
    READ_ERRORS,
    Entry,
    Listing,
    TooLarge,
    is_archive,
    read_bounded,
)
from transfer.ingest.fetch import check_sha256, download, is_url
from transfer.ingest.layout import (
    LabelsFile,
    Placement,
    check_classes,
    find_class_root,
    folder_placement,
    is_split_layout,
    labels_entry_parts,
    read_labels,
)
from transfer.memo.code_version import code_version
from transfer.memo.store import NO_MEMO, Memo, key

log = logging.getLogger(__name__)
MEMO_SPACE = "checks"  # the verdict on an image's bytes: why it cannot be used, or ""
MAX_PENDING = 64  # entries read ahead at most, however small: bounds the queue too


@dataclass
class ImportReport:
    """What happened to each file of the source."""

    kept: Counter = field(default_factory=Counter)  # class name -> images written
    placed: list[Placement] = field(default_factory=list)  # each image written, in order
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    ignored: int = 0  # hidden, system and stray files

    def summary(self, report_file: Path) -> str:
        classes = ", ".join(f"{name} {count}" for name, count in sorted(self.kept.items()))
        return (
            f"kept {sum(self.kept.values())} images in {len(self.kept)} classes ({classes}); "
            f"skipped {len(self.skipped)} files (listed in {report_file}); "
            f"ignored {self.ignored} hidden or stray files"
        )


def resolve_source(source: str, sha256: str | None, downloads_dir: Path) -> Path:
    """A local path for the source, downloading a URL first; archives are checksummed."""
    if is_url(source):
        return download(source, downloads_dir, sha256)
    if "://" in source:
        scheme = source.split("://", 1)[0]
        raise PipelineError(
            f"data.source {source}: the {scheme}:// scheme is not supported; "
            "use an http(s) URL, a local archive or a local folder"
        )
    path = Path(source).expanduser()
    if is_archive(path) and path.is_file():
        check_sha256(path, sha256, str(path))
    return path


def printable(parts: tuple[str, ...]) -> str:
    """A path for the report; bytes that are not UTF-8 are shown as \\xNN escapes."""
    name = "/".join(parts).encode("utf-8", "surrogateescape")
    return name.decode("utf-8", "backslashreplace")


def folds_case(directory: Path) -> bool:
    """Whether the file system of `directory` treats names differing in case as one."""
    probe = directory / ".CaseProbe"
    probe.touch()
    try:
        return (directory / ".caseprobe").exists()
    finally:
        probe.unlink()


class NameClaims:
    """The names written so far, to refuse a later entry whose name collides with one:
    the same path, equal after Unicode normalisation (or case folding, where the file system
    folds case), or a file where a folder is needed, or the other way round."""

    def __init__(self, fold_case: bool) -> None:
        self.fold_case = fold_case
        self.files: dict[tuple[str, ...], str] = {}  # key -> the file's name
        self.folders: dict[tuple[str, ...], tuple[str, ...]] = {}  # key -> the folder's name

    def _key(self, parts: tuple[str, ...]) -> tuple[str, ...]:
        normal = tuple(unicodedata.normalize("NFC", part) for part in parts)
        return tuple(part.casefold() for part in normal) if self.fold_case else normal

    def collision(self, parts: tuple[str, ...]) -> str | None:
        """Why the name collides with one already written (naming it), or None."""
        key = self._key(parts)
        if key in self.files:
            return f"name collides with {self.files[key]}"
        if key in self.folders:
            return f"name collides with the folder {printable(self.folders[key])}"
        for depth in range(1, len(key)):
            if key[:depth] in self.files:
                return f"its folder collides with the file {self.files[key[:depth]]}"
            folder = self.folders.get(key[:depth], parts[:depth])
            if folder != parts[:depth]:  # the same folder, spelled another way
                return f"its folder collides with the folder {printable(folder)}"
        return None

    def add(self, parts: tuple[str, ...]) -> None:
        """Record a name that was written."""
        key = self._key(parts)
        self.files[key] = printable(parts)
        for depth in range(1, len(key)):
            self.folders.setdefault(key[:depth], parts[:depth])


def _name_problem(parts: tuple[str, ...]) -> str | None:
    try:
        "/".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        return "name is not valid UTF-8"
    return None


def _write(out_dir: Path, parts: tuple[str, ...], data: bytearray) -> str | None:
    """Write out_dir/<parts>; the reason if the file system refuses the name."""
    target = out_dir.joinpath(*parts)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    except OSError as error:
        for folder in target.parents:  # no empty class folder left behind
            if folder == out_dir:
                break
            with suppress(OSError):  # not there, or not empty: rmdir removes only empty ones
                folder.rmdir()
        if error.errno == errno.ENAMETOOLONG:
            return "name too long for the file system"
        if error.errno in (errno.EILSEQ, errno.EINVAL):
            return f"name not allowed by the file system ({error.strerror})"
        raise PipelineError(f"cannot write {target} ({error.strerror})") from None
    return None


def _check(data: bytearray, max_pixels: int, memo: Memo, entry_key: str) -> str | None:
    """Why the image cannot be used, or None; the verdict kept in the memo."""
    try:
        decode_rgb(data, max_pixels)
        reason = None
    except ImageRejected as rejected:
        reason = str(rejected)
    memo.put(MEMO_SPACE, entry_key, (reason or "").encode())
    return reason


def _known(verdict: bytes) -> Future:
    """A verdict from the memo, as a finished check."""
    future: Future = Future()
    future.set_result(verdict.decode() or None)
    return future


@dataclass
class _Pending:
    parts: tuple[str, ...]
    placement: Placement
    data: bytearray
    pixels: int
    check: Future


def _read_labels_file(listing: Listing, labels: str, max_file_bytes: int) -> LabelsFile:
    """The labels file data.labels names, read from the source's listing."""
    parts = labels_entry_parts(labels)
    entry = next((e for e in listing.entries if e.parts == parts), None)
    if entry is None:
        raise PipelineError(f"data.labels {labels} is not a file of data.source")
    try:
        return read_labels(bytes(read_bounded(entry, max_file_bytes)), labels)
    except (TooLarge, *READ_ERRORS) as error:
        raise PipelineError(f"data.labels {labels} cannot be read ({error})") from None


def place_candidates(
    listing: Listing, report: ImportReport, labels: LabelsFile | None
) -> list[tuple[Placement, Entry]]:
    """(placement, entry) of each visible image file of the source, in the shape the source
    has (transfer/ingest/layout.py); the other files are counted as ignored or reported."""
    report.skipped += [(printable((name,)), reason) for name, reason in listing.refused]
    visible = [e for e in listing.entries if not any(is_hidden(p) for p in e.parts)]
    report.ignored = len(listing.entries) - len(visible)
    root = find_class_root([e.parts for e in visible])
    splits = is_split_layout([e.parts for e in visible], root)
    labels_parts = None if labels is None else labels_entry_parts(labels.name)
    candidates: list[tuple[Placement, Entry]] = []
    for entry in visible:
        if entry.parts == labels_parts:
            continue
        image = has_image_extension(entry.parts[-1])
        if labels is not None:
            placement = labels.placement(entry.parts)
        else:
            placement = folder_placement(entry.parts, root, splits=splits, image=image)
        if placement is None:
            report.ignored += 1  # files beside the class folders
        elif not image:
            suffix = Path(entry.parts[-1]).suffix or "no extension"
            report.skipped.append((printable(entry.parts), f"not an image file ({suffix})"))
        elif isinstance(placement, str):
            report.skipped.append((printable(entry.parts), placement))
        else:
            candidates.append((placement, entry))
    if labels is not None:
        report.skipped += labels.unmatched()
    return candidates


class _WriteQueue:
    """Images whose check is under way, bounded in bytes, pixels and count, and written (or
    reported) in the listing's order once checked."""

    def __init__(
        self, out_dir: Path, report: ImportReport, bar: tqdm, *, max_bytes: int, max_pixels: int
    ) -> None:
        self.out_dir, self.report, self.bar = out_dir, report, bar
        self.max_bytes, self.max_pixels = max_bytes, max_pixels
        self.claims = NameClaims(folds_case(out_dir))
        self.pending: deque[_Pending] = deque()
        self.waiting_bytes = self.waiting_pixels = 0  # of the entries in `pending`

    def make_room(self, size: int, pixels: int) -> None:
        """Finish the oldest checks until an image of `size` bytes and `pixels` fits."""
        while self.pending and (
            self.waiting_bytes + size > self.max_bytes
            or self.waiting_pixels + pixels > self.max_pixels
            or len(self.pending) >= MAX_PENDING
        ):
            self.finish_oldest()

    def append(self, item: _Pending) -> None:
        self.waiting_bytes += len(item.data)
        self.waiting_pixels += item.pixels
        self.pending.append(item)

    def finish_oldest(self) -> None:
        item = self.pending.popleft()
        self.waiting_bytes -= len(item.data)
        self.waiting_pixels -= item.pixels
        path = item.placement.path
        reason = item.check.result() or self.claims.collision(path)
        reason = reason or _write(self.out_dir, path, item.data)
        if reason:
            self.report.skipped.append((printable(item.parts), reason))
        else:
            self.claims.add(path)
            self.report.kept[item.placement.label] += 1
            self.report.placed.append(item.placement)
        self.bar.update(1)


def _read(entry: Entry, max_file_bytes: int) -> tuple[bytearray, str | None]:
    """The entry's bytes, or why they cannot be used."""
    reason = _name_problem(entry.parts)
    if reason is not None:
        return bytearray(), reason
    try:
        return read_bounded(entry, max_file_bytes), None
    except TooLarge:
        return bytearray(), f"larger than data.max_file_mb={max_file_bytes >> 20}"
    except READ_ERRORS as error:
        return bytearray(), f"cannot read ({error})"


def import_images(
    listing: Listing,
    out_dir: Path,
    max_pixels: int,
    max_file_bytes: int,
    memo: Memo = NO_MEMO,
    *,
    labels: str | None = None,
) -> ImportReport:
    """Write every usable image of `listing` to out_dir/<its placement's path>; report the
    rest. `labels` (data.labels) names a labels file inside the source; without, the
    source's folders say each photo's class and split (transfer/ingest/layout.py).

    Entries are taken in the listing's order; of two whose names collide, the first usable
    one is kept. Each image is decoded to check it unless the memo has the verdict on its
    bytes.
    """
    version = key(code_version("transfer.image_files"), PIL.__version__, max_pixels)
    report = ImportReport()
    labels_file = None if labels is None else _read_labels_file(listing, labels, max_file_bytes)
    candidates = place_candidates(listing, report, labels_file)
    with ThreadPoolExecutor() as pool, tqdm(total=len(candidates), desc="checking images") as bar:
        queue = _WriteQueue(out_dir, report, bar, max_bytes=max_file_bytes, max_pixels=max_pixels)
        for placement, entry in candidates:
            data, reason = _read(entry, max_file_bytes)
            if reason:
                report.skipped.append((printable(entry.parts), reason))
                bar.update(1)
                continue
            entry_key = key(version, hashlib.sha256(data).hexdigest())
            verdict = memo.get(MEMO_SPACE, entry_key)
            pixels = declared_pixels(data) if verdict is None else 0  # 0: not decoded
            pixels = pixels if pixels <= max_pixels else 0  # refused from its header, undecoded
            queue.make_room(len(data), pixels)
            if verdict is None:
                check = pool.submit(_check, data, max_pixels, memo, entry_key)
            else:
                check = _known(verdict)
            queue.append(_Pending(entry.parts, placement, data, pixels, check))
        while queue.pending:
            queue.finish_oldest()
    for name in sorted({p.label for p, _ in candidates} - set(report.kept)):
        log.warning("class %s has no usable image and is left out", name)
    check_classes(report.placed)
    return report


def write_skipped_report(path: Path, skipped: list[tuple[str, str]]) -> None:
    """One row per file left out, with the reason, sorted by file."""
    write_csv(path, ["file", "reason"], sorted(skipped))
