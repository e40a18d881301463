"""download against hostile input: bounded memory, odd names, collisions, links, schemes."""

import csv
import io
import tarfile
import unicodedata
import zipfile
import zlib
from pathlib import Path

import pytest
import yaml
from PIL import Image

from bench.sandbox import run_command
from tests.helpers import make_image_folder, run_stage_measured, tiny_params, write_image
from transfer.errors import PipelineError
from transfer.image_files import ImageRejected, decode_rgb
from transfer.ingest import importer
from transfer.ingest.archives import open_source
from transfer.ingest.importer import folds_case, import_images, resolve_source
from transfer.paths import SKIPPED_REPORT

MIB = 1 << 20


def jpeg(colour: tuple[int, int, int] = (200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


class Zeros(io.RawIOBase):
    """`size` zero bytes, produced on demand: an archive member far larger than memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def add_to_tar(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def project(tmp_path: Path, source: Path, **data: int) -> Path:
    """A working directory with params.yaml pointing at `source`."""
    params = tiny_params(source)
    params["data"].update(data)
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "params.yaml").write_text(yaml.safe_dump(params))
    return directory


def files_on_disk(raw_dir: Path) -> set[str]:
    return {p.relative_to(raw_dir).as_posix() for p in raw_dir.rglob("*") if p.is_file()}


def skipped_rows(directory: Path) -> dict[str, str]:
    with (directory / SKIPPED_REPORT).open(newline="") as file:
        return {row["file"]: row["reason"] for row in csv.DictReader(file)}


def assert_clean_run(result, directory: Path) -> None:
    """Exit code 0, no traceback, and the summary's counts are what is on disk."""
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    on_disk = files_on_disk(directory / "data/raw")
    by_class = {name: sum(f.startswith(f"{name}/") for f in on_disk) for name in
                sorted({f.split("/")[0] for f in on_disk})}  # fmt: skip
    classes = ", ".join(f"{name} {count}" for name, count in by_class.items())
    summary = f"kept {len(on_disk)} images in {len(by_class)} classes ({classes})"
    assert summary in result.stderr
    skipped = skipped_rows(directory)
    assert f"skipped {len(skipped)} files" in result.stderr


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_a_huge_member_is_skipped_without_reading_it_whole(tmp_path: Path, kind: str) -> None:
    archive_path = tmp_path / f"photos.{kind}"
    huge = 300 * MIB  # zeros: a few hundred KB compressed
    if kind == "zip":
        with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in ("cat/a.jpg", "dog/b.jpg"):
                archive.writestr(name, jpeg())
            with archive.open("cat/huge.jpg", "w", force_zip64=True) as member:
                for _ in range(huge // MIB):
                    member.write(bytes(MIB))
    else:
        with tarfile.open(archive_path, "w:gz", compresslevel=1) as archive:
            for name in ("cat/a.jpg", "dog/b.jpg"):
                add_to_tar(archive, name, jpeg())
            info = tarfile.TarInfo("cat/huge.jpg")
            info.size = huge
            archive.addfile(info, io.BufferedReader(Zeros(huge), MIB))
    directory = project(tmp_path, archive_path, max_file_mb=20)
    result, peak_mib = run_stage_measured("stages.download", directory)
    assert_clean_run(result, directory)
    assert files_on_disk(directory / "data/raw") == {"cat/a.jpg", "dog/b.jpg"}
    assert skipped_rows(directory) == {"cat/huge.jpg": "larger than data.max_file_mb=20"}
    assert peak_mib < 200, f"peak {peak_mib:.0f} MiB for a {huge // MIB} MiB member"


# Enough ordinary images in each class for split to give every class a training image.
GOOD = [
    f"{name}/ok_{index}.jpg" for name in ("cat", "dog", "fox", "skipped.csv") for index in range(8)
]


def odd_names_tar(path: Path) -> Path:
    """Names that are too long, not UTF-8, colliding in every way, and a class named like the
    old report."""
    nfc, nfd = (unicodedata.normalize(form, "dog/café.jpg") for form in ("NFC", "NFD"))
    with tarfile.open(path, "w:gz", errors="surrogateescape") as archive:
        for index, name in enumerate(GOOD):  # each its own photo: the split goes by content
            add_to_tar(archive, name, jpeg((index * 7, 100, 100)))
        add_to_tar(archive, "cat/a.jpg", jpeg())
        add_to_tar(archive, "cat/a.jpg/b.jpg", jpeg())  # a folder where a file already is
        add_to_tar(archive, "cat/" + "x" * 300 + ".jpg", jpeg())
        add_to_tar(archive, b"cat/\xff\xfe.jpg".decode("utf-8", "surrogateescape"), jpeg())
        add_to_tar(archive, "dog/d.jpg", jpeg((10, 200, 10)))
        add_to_tar(archive, "dog/d.jpg", jpeg((10, 10, 200)))  # the same name again
        add_to_tar(archive, nfc, jpeg())
        add_to_tar(archive, nfd, jpeg())  # equal to the one before once normalised
        add_to_tar(archive, "skipped.csv/e.jpg", jpeg())  # the old report's name, as a class
        add_to_tar(archive, "fox/f.jpg/g.jpg", jpeg())  # a file where a folder already is ...
        add_to_tar(archive, "fox/f.jpg", jpeg())  # ... comes second
    return path


def test_odd_names_are_skipped_with_their_reason_and_the_pipeline_goes_on(
    tmp_path: Path,
) -> None:
    directory = project(tmp_path, odd_names_tar(tmp_path / "photos.tgz"))
    result, _ = run_stage_measured("stages.download", directory)
    assert_clean_run(result, directory)
    nfc = unicodedata.normalize("NFC", "dog/café.jpg")
    assert files_on_disk(directory / "data/raw") == {
        *GOOD, "cat/a.jpg", "dog/d.jpg", nfc, "skipped.csv/e.jpg", "fox/f.jpg/g.jpg",
    }  # fmt: skip
    assert skipped_rows(directory) == {
        "cat/a.jpg/b.jpg": "its folder collides with the file cat/a.jpg",
        "cat/" + "x" * 300 + ".jpg": "name too long for the file system",
        "cat/\\xff\\xfe.jpg": "name is not valid UTF-8",
        "dog/d.jpg": "name collides with dog/d.jpg",
        unicodedata.normalize("NFD", "dog/café.jpg"): f"name collides with {nfc}",
        "fox/f.jpg": "name collides with the folder fox/f.jpg",
    }
    # The first of the two dog/d.jpg is the one kept.
    assert (directory / "data/raw/dog/d.jpg").read_bytes() == jpeg((10, 200, 10))
    for stage in ("stages.split", "stages.cache"):
        after = run_command(["python", "-m", stage], directory)
        assert after.returncode == 0, after.stderr[-2000:]
    assert (directory / "data/cache/meta.json").exists()


def test_names_that_differ_in_case_collide_where_the_file_system_folds_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = make_image_folder(tmp_path / "photos", per_class=1)
    write_image(source / "cat" / "IMG_00.JPG", (200, 40, 40), 7)
    write_image(source / "Dog" / "x.jpg", (40, 200, 40), 8)
    assert folds_case(tmp_path) in (True, False)
    assert not list(tmp_path.glob(".*"))  # the probe is gone
    for fold, expected_skips in ((False, set()), (True, {"cat/img_00.jpg", "dog/img_00.jpg"})):
        monkeypatch.setattr(importer, "folds_case", lambda directory, fold=fold: fold)
        out_dir = tmp_path / f"raw_{fold}"
        out_dir.mkdir()
        with open_source(source) as listing:
            report = import_images(listing, out_dir, 1_000_000, MIB)
        assert {name for name, _ in report.skipped} == expected_skips
        if fold:
            assert (
                dict(report.skipped)["dog/img_00.jpg"] == "its folder collides with the folder Dog"
            )
        assert sum(report.kept.values()) == len(files_on_disk(out_dir))


def test_large_images_are_decoded_within_the_pixel_budget(tmp_path: Path) -> None:
    """Eight 16 M-pixel PNGs (48 MB each decoded) with data.max_pixels 16 M: one at a time."""
    source = tmp_path / "photos"
    for index in range(8):
        path = source / ("cat" if index % 2 else "dog") / f"big_{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4000, 4000), (index * 20, 100, 50)).save(path, compress_level=1)
    directory = project(tmp_path, source, max_pixels=16_000_000)
    result, peak_mib = run_stage_measured("stages.download", directory)
    assert_clean_run(result, directory)
    assert len(files_on_disk(directory / "data/raw")) == 8
    assert peak_mib < 300, f"peak {peak_mib:.0f} MiB"


def test_links_inside_the_source_are_followed_and_links_out_of_it_refused(
    tmp_path: Path,
) -> None:
    source = make_image_folder(tmp_path / "photos", per_class=1)
    outside = tmp_path / "elsewhere"
    write_image(outside / "secret.jpg", (1, 2, 3), 9)
    (source / "cat" / "inside.jpg").symlink_to(source / "dog" / "img_00.jpg")
    (source / "cat" / "outside.jpg").symlink_to(outside / "secret.jpg")
    (source / "cat" / "broken.jpg").symlink_to(tmp_path / "nothing.jpg")
    (source / "cats_too").symlink_to(source / "cat", target_is_directory=True)
    (source / "stolen").symlink_to(outside, target_is_directory=True)
    (source / "dog" / "loop").symlink_to(source / "dog", target_is_directory=True)
    out_dir = tmp_path / "raw"
    out_dir.mkdir()
    with open_source(source) as listing:
        report = import_images(listing, out_dir, 1_000_000, MIB)
    assert files_on_disk(out_dir) == {
        "cat/img_00.jpg", "cat/inside.jpg", "cats_too/img_00.jpg", "cats_too/inside.jpg",
        "dog/img_00.jpg", "fox/img_00.jpg",
    }  # fmt: skip
    assert dict(report.skipped) == {
        "cat/broken.jpg": "broken symbolic link or link loop",
        "cat/outside.jpg": "symbolic link to outside data.source",
        "cats_too/broken.jpg": "broken symbolic link or link loop",
        "cats_too/outside.jpg": "symbolic link to outside data.source",
        "dog/loop": "symbolic link loop",
        "stolen": "symbolic link to outside data.source",
    }


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels: enough for the size check."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_max_pixels_is_the_one_limit_even_above_pillows() -> None:
    data = png_header(20_000, 10_000)  # 200 M pixels: above Pillow's own limit of about 179 M
    with pytest.raises(ImageRejected) as error:
        decode_rgb(data, 100_000_000)
    assert str(error.value) == "too many pixels (20000x10000 > data.max_pixels=100000000)"
    with pytest.raises(ImageRejected) as error:  # allowed by the param: decoding is tried
        decode_rgb(data, 300_000_000)
    assert str(error.value).startswith("corrupt or truncated")


@pytest.mark.parametrize("source", ["ftp://example.com/photos.tgz", "file:///srv/photos.tgz"])
def test_an_unsupported_scheme_is_one_line_naming_it(source: str, tmp_path: Path) -> None:
    scheme = source.split(":")[0]
    with pytest.raises(PipelineError) as error:
        resolve_source(source, None, tmp_path)
    assert str(error.value) == (
        f"data.source {source}: the {scheme}:// scheme is not supported; "
        "use an http(s) URL, a local archive or a local folder"
    )


def test_data_sha256_checks_a_local_archive_too(tmp_path: Path) -> None:
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cat/a.jpg", jpeg())
    with pytest.raises(PipelineError, match=r"^checksum mismatch for .*photos.zip: data.sha256"):
        resolve_source(str(path), "0" * 64, tmp_path)


def test_zip_names_encrypted_members_and_long_folders_are_skipped_with_reasons(
    tmp_path: Path,
) -> None:
    """zipfile reads a name without the UTF-8 flag as cp437; its bytes are taken as UTF-8
    instead, as for tar. An encrypted member and a class folder name too long for the file
    system are skipped, not a traceback."""
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in GOOD:
            archive.writestr(name, jpeg())
        archive.writestr("cat/XY.jpg", jpeg())  # renamed below to UTF-8 bytes, without the flag
        archive.writestr("cat/QQ.jpg", jpeg())  # renamed below to bytes that are not UTF-8
        archive.writestr("dog/locked.jpg", jpeg())  # flagged as encrypted below
        archive.writestr("y" * 300 + "/a.jpg", jpeg())
    contents = bytearray(path.read_bytes())
    local, central = (i for i in range(len(contents)) if contents.startswith(b"dog/locked", i))
    contents[local - 30 + 6] |= 0x1  # the flags of the local header, then of the directory
    contents[central - 46 + 8] |= 0x1
    contents = bytes(contents).replace(b"cat/XY.jpg", "cat/é.jpg".encode())
    path.write_bytes(contents.replace(b"cat/QQ.jpg", b"cat/\xff\xfe.jpg"))
    directory = project(tmp_path, path)
    result, _ = run_stage_measured("stages.download", directory)
    assert_clean_run(result, directory)
    assert files_on_disk(directory / "data/raw") == {*GOOD, "cat/é.jpg"}
    reasons = skipped_rows(directory)
    assert reasons["cat/\\xff\\xfe.jpg"] == "name is not valid UTF-8"
    assert reasons["dog/locked.jpg"] == "encrypted archive entry (no password is asked)"
    assert reasons["y" * 300 + "/a.jpg"] == "name too long for the file system"
    assert sorted(p.name for p in (directory / "data/raw").iterdir()) == sorted(
        {name.split("/")[0] for name in GOOD}
    )  # no folder left behind by the long name
