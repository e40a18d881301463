"""Stage `split`: assign each image to train, val or test by a hash of its path and the seed."""

import logging

from transfer.atomic import atomic_output
from transfer.errors import run_main
from transfer.params import load_params
from transfer.paths import RAW_DIR, SPLIT_DIR
from transfer.splitting import list_images, split_file, split_images, write_split

log = logging.getLogger(__name__)


def main() -> None:
    params = load_params()
    paths = list_images(RAW_DIR)
    splits = split_images(paths, params.seed, params.split.val, params.split.test)
    with atomic_output(SPLIT_DIR) as split_dir:
        split_dir.mkdir()
        for name, images in splits.items():
            write_split(split_file(split_dir, name), images)
    log.info(", ".join(f"{name} {len(images)}" for name, images in splits.items()))


if __name__ == "__main__":
    run_main(main)
