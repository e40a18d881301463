"""download: local folders, archives (hostile ones too) and HTTP sources."""

import csv
import hashlib
import http.server
import io
import os
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import make_image_folder, write_image
from transfer.errors import PipelineError
from transfer.ingest.archives import open_source
from transfer.ingest.importer import find_class_root, import_images, resolve_source


def jpeg_bytes(colour=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def import_source(
    source: Path, out_dir: Path, max_pixels: int = 1_000_000, max_file_bytes: int = 1 << 20
):
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_source(source) as listing:
        return import_images(listing, out_dir, max_pixels, max_file_bytes)


def kept_files(out_dir: Path) -> set[str]:
    return {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}


def test_messy_folder_keeps_good_images_and_reports_the_rest(tmp_path: Path) -> None:
    source = make_image_folder(tmp_path / "photos", per_class=2)
    (source / "cat" / "UPPER.JPEG").write_bytes(jpeg_bytes())
    (source / "cat" / "empty.jpg").write_bytes(b"")
    (source / "cat" / "fake.png").write_text("not a picture")
    (source / "dog" / "cut.jpg").write_bytes(jpeg_bytes()[:100])
    (source / "dog" / "notes.txt").write_text("hello")
    Image.new("RGB", (1200, 1000)).save(source / "dog" / "huge.png")
    (source / "dog" / ".DS_Store").write_bytes(b"\0")
    (source / "fox" / "Thumbs.db").write_bytes(b"\0")
    (source / "README.md").write_text("stray file beside the class folders")
    (source / "empty_class").mkdir()
    (source / "empty_class" / "broken.jpg").write_bytes(b"xx")

    out_dir = tmp_path / "raw"
    report = import_source(source, out_dir)

    assert dict(report.kept) == {"cat": 3, "dog": 2, "fox": 2}
    assert kept_files(out_dir) == {
        "cat/UPPER.JPEG", "cat/img_00.jpg", "cat/img_01.jpg",
        "dog/img_00.jpg", "dog/img_01.jpg", "fox/img_00.jpg", "fox/img_01.jpg",
    }  # fmt: skip
    reasons = dict(report.skipped)
    assert reasons["cat/empty.jpg"] == "empty file"
    assert reasons["cat/fake.png"] == "not an image (unrecognised data)"
    assert reasons["dog/cut.jpg"].startswith("corrupt or truncated")
    assert reasons["dog/notes.txt"] == "not an image file (.txt)"
    assert reasons["dog/huge.png"] == "too many pixels (1200x1000 > data.max_pixels=1000000)"
    assert reasons["empty_class/broken.jpg"] == "not an image (unrecognised data)"
    assert len(reasons) == 6
    assert report.ignored == 3  # .DS_Store, Thumbs.db, README.md
    assert "kept 7 images in 3 classes" in report.summary(Path("skipped.csv"))


def test_single_top_folder_is_unwrapped(tmp_path: Path) -> None:
    make_image_folder(tmp_path / "src" / "flower_photos", per_class=2)
    (tmp_path / "src" / "flower_photos" / "LICENSE.txt").write_text("licence")
    assert find_class_root(
        [("flower_photos", "cat", "a.jpg"), ("flower_photos", "dog", "b.jpg")]
    ) == ("flower_photos",)
    report = import_source(tmp_path / "src", tmp_path / "raw")
    assert set(report.kept) == {"cat", "dog", "fox"}


def test_fewer_than_two_classes_is_a_one_line_error(tmp_path: Path) -> None:
    write_image(tmp_path / "src" / "cat" / "a.jpg", (1, 2, 3), 0)
    with pytest.raises(PipelineError, match="at least 2 classes with usable images, found cat"):
        import_source(tmp_path / "src", tmp_path / "raw")


def test_missing_source_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"data.source .*nowhere does not exist"):
        import_source(tmp_path / "nowhere", tmp_path / "raw")


def hostile_tar(path: Path) -> Path:
    good = jpeg_bytes()
    with tarfile.open(path, "w:gz") as archive:
        for name in ("top/cat/a.jpg", "top/cat/b.JPG", "top/dog/c.jpg", "top/dog/d.jpg"):
            info = tarfile.TarInfo(name)
            info.size = len(good)
            archive.addfile(info, io.BytesIO(good))
        for name in ("/etc/evil.jpg", "top/../../escape.jpg"):
            info = tarfile.TarInfo(name)
            info.size = len(good)
            archive.addfile(info, io.BytesIO(good))
        link = tarfile.TarInfo("top/cat/link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
        hard = tarfile.TarInfo("top/dog/hard.jpg")
        hard.type, hard.linkname = tarfile.LNKTYPE, "top/cat/a.jpg"
        archive.addfile(hard)
        device = tarfile.TarInfo("top/dog/dev.jpg")
        device.type = tarfile.CHRTYPE
        archive.addfile(device)
    return path


def test_hostile_tar_entries_are_refused_and_nothing_escapes(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    out_dir = workdir / "raw"
    report = import_source(hostile_tar(tmp_path / "data.tgz"), out_dir)
    assert kept_files(out_dir) == {"cat/a.jpg", "cat/b.JPG", "dog/c.jpg", "dog/d.jpg"}
    assert sorted(report.skipped) == [
        ("/etc/evil.jpg", "unsafe archive entry: absolute path"),
        ("top/../../escape.jpg", "unsafe archive entry: path leaves the archive (..)"),
        ("top/cat/link.jpg", "unsafe archive entry: symbolic link"),
        ("top/dog/dev.jpg", "unsafe archive entry: device or special file"),
        ("top/dog/hard.jpg", "unsafe archive entry: hard link"),
    ]
    everything = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    assert everything - {"data.tgz", "work", "work/raw"} == {
        f"work/raw/{name}" for name in ("cat", "dog", *kept_files(out_dir))
    }


def test_hostile_zip_entries_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("cat/a.jpg", "cat/b.jpg", "dog/c.png", "../up.jpg", "/abs.jpg"):
            archive.writestr(name, jpeg_bytes())
        link = zipfile.ZipInfo("dog/link.jpg")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    report = import_source(path, tmp_path / "raw")
    assert kept_files(tmp_path / "raw") == {"cat/a.jpg", "cat/b.jpg", "dog/c.png"}
    assert {reason for _, reason in report.skipped} == {
        "unsafe archive entry: path leaves the archive (..)",
        "unsafe archive entry: absolute path",
        "unsafe archive entry: symbolic link",
    }


def test_damaged_zip_member_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "data.zip"
    damaged = jpeg_bytes((1, 2, 3))
    with zipfile.ZipFile(path, "w") as archive:  # stored, not compressed: bytes as written
        for name in ("cat/a.jpg", "dog/b.jpg"):
            archive.writestr(name, jpeg_bytes())
        archive.writestr("dog/damaged.jpg", damaged)
    contents = path.read_bytes()
    at = contents.index(damaged) + len(damaged) // 2
    path.write_bytes(contents[:at] + bytes([contents[at] ^ 0xFF]) + contents[at + 1 :])
    report = import_source(path, tmp_path / "raw")
    assert kept_files(tmp_path / "raw") == {"cat/a.jpg", "dog/b.jpg"}
    [(name, reason)] = report.skipped
    assert name == "dog/damaged.jpg"
    assert reason.startswith("cannot read (Bad CRC-32 for file 'dog/damaged.jpg'")


def test_unreadable_archive_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.tgz"
    path.write_bytes(b"not a tar at all")
    with pytest.raises(PipelineError, match=r"broken.tgz is not a readable tar"):
        import_source(path, tmp_path / "raw")


@pytest.fixture
def http_archive(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A small tar.gz served from 127.0.0.1 by a server the test starts: (url, sha256)."""
    served = tmp_path / "served"
    served.mkdir()
    hostile_tar(served / "photos.tgz")
    digest = hashlib.sha256((served / "photos.tgz").read_bytes()).hexdigest()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/photos.tgz", digest
    server.shutdown()
    server.server_close()


def test_http_download_with_correct_checksum_is_kept_and_reused(
    http_archive: tuple[str, str], tmp_path: Path
) -> None:
    url, digest = http_archive
    downloads = tmp_path / "downloads"
    path = resolve_source(url, digest, downloads)
    assert path.name == "photos.tgz" and path.parent.parent == downloads
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    modified = path.stat().st_mtime_ns
    assert resolve_source(url, digest, downloads) == path  # no second download
    assert path.stat().st_mtime_ns == modified
    report = import_source(path, tmp_path / "raw")
    assert dict(report.kept) == {"cat": 2, "dog": 2}
    other = resolve_source(f"{url}?version=2", digest, downloads)  # same file name, other URL
    assert other != path and other.name == path.name


def test_a_file_changed_on_the_server_is_downloaded_again(
    http_archive: tuple[str, str], tmp_path: Path
) -> None:
    """DVC reruns download when the file at the URL changed (and when a param did): the
    server is asked, and only a changed file is fetched again."""
    url, _ = http_archive
    downloads = tmp_path / "downloads"
    path = resolve_source(url, None, downloads)
    first = path.read_bytes()
    served = tmp_path / "served" / "photos.tgz"
    served.write_bytes(first + b"more")  # a new version, with a new Last-Modified
    os.utime(served, (time.time() + 10, time.time() + 10))
    assert resolve_source(url, None, downloads).read_bytes() == first + b"more"
    modified = path.stat().st_mtime_ns
    assert resolve_source(url, None, downloads) == path  # unchanged: not fetched again
    assert path.stat().st_mtime_ns == modified


def test_a_download_cut_short_is_an_error_and_keeps_nothing(tmp_path: Path) -> None:
    class CutShort(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"only ten b")  # then the connection closes

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CutShort)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/photos.tgz"
    try:
        with pytest.raises(PipelineError) as error:
            resolve_source(url, None, tmp_path / "downloads")
    finally:
        server.shutdown()
        server.server_close()
    assert str(error.value) == f"download of {url} was cut short (990 bytes missing); run it again"
    assert not [p for p in (tmp_path / "downloads").rglob("*") if p.is_file()]


def test_http_download_with_wrong_checksum_fails_and_keeps_nothing(
    http_archive: tuple[str, str], tmp_path: Path
) -> None:
    url, digest = http_archive
    downloads = tmp_path / "downloads"
    with pytest.raises(PipelineError) as error:
        resolve_source(url, "0" * 64, downloads)
    assert str(error.value) == (
        f"checksum mismatch for {url}: data.sha256 is {'0' * 64}, the file has {digest}"
    )
    assert not [p for p in downloads.rglob("*") if p.is_file()]


def test_unreachable_url_names_it_and_how_to_work_offline(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/photos.tgz"  # the discard port: nothing listens
    with pytest.raises(PipelineError) as error:
        resolve_source(url, None, tmp_path)
    message = str(error.value)
    assert message.startswith(f"cannot download {url} (")
    assert "set data.source in params.yaml to a local folder" in message
    assert "\n" not in message


def test_skipped_report_is_written(tmp_path: Path) -> None:
    from transfer.ingest.importer import write_skipped_report

    write_skipped_report(tmp_path / "skipped.csv", [("b.jpg", "empty file"), ("a.txt", "x")])
    with (tmp_path / "skipped.csv").open() as file:
        assert list(csv.reader(file)) == [
            ["file", "reason"],
            ["a.txt", "x"],
            ["b.jpg", "empty file"],
        ]
