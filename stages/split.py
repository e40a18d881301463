"""Stage `split`: label the photos (as data/raw.csv gives them, or as corrections.csv corrects
them) and put each in train, val or test: its given split, or by a hash of its content and the
split's seed."""

import logging

from transfer.atomic import atomic_output
from transfer.errors import run_main
from transfer.manifests.corrections import DROP, apply_corrections, read_corrections
from transfer.manifests.raw_index import read_raw_index
from transfer.manifests.split_lists import Photo, split_file, write_split
from transfer.params import load_params
from transfer.paths import CORRECTIONS_FILE, RAW_INDEX, SPLIT_DIR
from transfer.splitting import split_images

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    raw = read_raw_index(RAW_INDEX)
    corrections = read_corrections(CORRECTIONS_FILE)
    given = {path: image.label for path, image in raw.items()}
    labels = apply_corrections(given, corrections, CORRECTIONS_FILE)
    photos = [Photo(path, labels[path], raw[path].sha256) for path in labels]
    splits = split_images(
        photos,
        params.split_seed,
        params.split.val,
        params.split.test,
        given={path: raw[path].split for path in labels},
    )
    with atomic_output(SPLIT_DIR) as split_dir:
        split_dir.mkdir()
        for name, images in splits.items():
            write_split(split_file(split_dir, name), images)
    dropped = sum(label == DROP for _, label in corrections.values())
    log.info(
        "%s; %s: %d relabelled, %d dropped",
        ", ".join(f"{name} {len(images)}" for name, images in splits.items()),
        CORRECTIONS_FILE,
        len(corrections) - dropped,
        dropped,
    )


if __name__ == "__main__":
    run_main(main)
