"""Import a source's usable images into <out>/<class>/<image>, and report what was skipped."""

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from tqdm import tqdm

from transfer.atomic import write_csv
from transfer.errors import PipelineError
from transfer.ingest.archives import READ_ERRORS, Entry, Listing, is_archive
from transfer.ingest.fetch import check_sha256, download, is_url
from transfer.ingest.image_files import ImageRejected, decode_rgb, has_image_extension, is_hidden
from transfer.paths import SKIPPED_REPORT

log = logging.getLogger(__name__)
DECODE_CHUNK = 128  # images read ahead and checked in parallel; bounds memory


@dataclass
class ImportReport:
    """What happened to each file of the source."""

    kept: Counter = field(default_factory=Counter)  # class name -> images kept
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    ignored: int = 0  # hidden, system and stray files

    def summary(self) -> str:
        classes = ", ".join(f"{name} {count}" for name, count in sorted(self.kept.items()))
        return (
            f"kept {sum(self.kept.values())} images in {len(self.kept)} classes ({classes}); "
            f"skipped {len(self.skipped)} files (listed in {SKIPPED_REPORT}); "
            f"ignored {self.ignored} hidden or stray files"
        )


def resolve_source(source: str, sha256: str | None, downloads_dir: Path) -> Path:
    """A local path for the source, downloading a URL first; archives are checksummed."""
    if is_url(source):
        return download(source, downloads_dir, sha256)
    path = Path(source).expanduser()
    if is_archive(path) and path.is_file():
        check_sha256(path, sha256, str(path))
    return path


def find_class_root(paths: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The folder whose subfolders are the classes: descend while there is a single subfolder.

    A single subfolder cannot be the only class, so it is a wrapper like flower_photos/.
    """
    root: tuple[str, ...] = ()
    while True:
        depth = len(root)
        folders = {p[depth] for p in paths if len(p) > depth + 1 and p[:depth] == root}
        if len(folders) != 1:
            return root
        only = folders.pop()
        if not any(len(p) > depth + 2 and p[depth] == only for p in paths):
            return root  # the single folder holds files only: it is a class, not a wrapper
        root = (*root, only)


def _check(data: bytes, max_pixels: int) -> str | None:
    try:
        decode_rgb(data, max_pixels)
    except ImageRejected as reason:
        return str(reason)
    return None


def import_images(listing: Listing, out_dir: Path, max_pixels: int) -> ImportReport:
    """Write every usable image of `listing` to out_dir/<class>/...; report the rest."""
    report = ImportReport()
    report.skipped += [(name, f"unsafe archive entry: {why}") for name, why in listing.refused]
    visible = [e for e in listing.entries if not any(is_hidden(p) for p in e.parts)]
    report.ignored = len(listing.entries) - len(visible)
    root = find_class_root([e.parts for e in visible])
    candidates: list[tuple[tuple[str, ...], Entry]] = []
    for entry in visible:
        relative = entry.parts[len(root) :]
        if entry.parts[: len(root)] != root or len(relative) < 2:
            report.ignored += 1  # files beside the class folders
        elif not has_image_extension(relative[-1]):
            suffix = Path(relative[-1]).suffix or "no extension"
            report.skipped.append(("/".join(entry.parts), f"not an image file ({suffix})"))
        else:
            candidates.append((relative, entry))
    class_names = sorted({relative[0] for relative, _ in candidates})
    pending = iter(candidates)
    with ThreadPoolExecutor() as pool, tqdm(total=len(candidates), desc="checking images") as bar:
        while chunk := list(islice(pending, DECODE_CHUNK)):
            readable = []
            for relative, entry in chunk:
                try:
                    readable.append((relative, entry, entry.read()))
                except READ_ERRORS as error:
                    report.skipped.append(("/".join(entry.parts), f"cannot read ({error})"))
            contents = [data for _, _, data in readable]
            reasons = pool.map(_check, contents, [max_pixels] * len(readable))
            for (relative, entry, data), reason in zip(readable, reasons, strict=True):
                if reason:
                    report.skipped.append(("/".join(entry.parts), reason))
                    continue
                target = out_dir.joinpath(*relative)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                report.kept[relative[0]] += 1
            bar.update(len(chunk))
    for name in class_names:
        if not report.kept[name]:
            log.warning("class folder %s has no usable image and is left out", name)
    if len(report.kept) < 2:
        found = ", ".join(sorted(report.kept)) or "none"
        raise PipelineError(
            f"data.source needs at least 2 class folders with usable images, found {found}"
        )
    return report


def write_skipped_report(path: Path, skipped: list[tuple[str, str]]) -> None:
    """skipped.csv: one row per file left out, with the reason, sorted by file."""
    write_csv(path, ["file", "reason"], sorted(skipped))
