"""Benchmark: peak memory of the `download` stage on hostile input.

    python -m bench.ingest_memory [--checkout DIR] [--work DIR]

Builds two sources in a scratch folder: a zip holding one 1 GiB zero-filled member named like
an image (about 1 MB compressed) beside a few small images, and twelve valid 7000 x 7000 PNGs
(49 M pixels each, under the default data.max_pixels). Runs the stage of a checkout (default:
this one) on each with the default params and prints its peak resident memory. Point
--checkout at an older checkout of the project to compare.
"""

import argparse
import io
import resource
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml
from PIL import Image

from bench.sandbox import PROJECT_ROOT, run_measured

GIB = 1 << 30


def small_jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (shade, 100, 100)).save(buffer, format="JPEG")
    return buffer.getvalue()


def zero_member_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(4):
            archive.writestr(f"cat/small_{index}.jpg", small_jpeg(index * 10))
            archive.writestr(f"dog/small_{index}.jpg", small_jpeg(200 - index * 10))
        with archive.open("cat/zeros.jpg", "w", force_zip64=True) as member:
            for _ in range(GIB >> 20):
                member.write(bytes(1 << 20))
    return path


def big_pngs(folder: Path) -> Path:
    for index in range(12):
        path = folder / ("cat" if index % 2 else "dog") / f"big_{index:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (7000, 7000), (index * 20, 120, 60)).save(path, compress_level=1)
    return folder


def peak_of_download(checkout: Path, source: Path, work: Path) -> tuple[float, float, str]:
    """(peak MiB, seconds, last stderr line) of checkout's download stage on `source`."""
    params = yaml.safe_load((checkout / "params.yaml").read_text())
    params["data"]["source"] = str(source)
    work.mkdir(parents=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    start = time.perf_counter()
    result, peak = run_measured(
        [sys.executable, "-m", "stages.download"], work, {"PYTHONPATH": str(checkout)}
    )
    seconds = time.perf_counter() - start
    last = (result.stderr.strip().splitlines() or [""])[-1]
    return (float("nan") if result.returncode else peak), seconds, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, default=PROJECT_ROOT)
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="ingest-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    sources = {
        "1 GiB zero-filled zip member": zero_member_zip(work / "zeros.zip"),
        "twelve 7000x7000 PNGs": big_pngs(work / "pngs"),
    }
    print(f"download stage of {args.checkout.resolve()}")
    for index, (name, source) in enumerate(sources.items()):
        peak, seconds, last = peak_of_download(args.checkout, source, work / f"run_{index}")
        print(f"{name:<30} peak {peak:7.0f} MiB  {seconds:6.1f} s  {last[-110:]}")
    print(f"(this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB)")


if __name__ == "__main__":
    main()
