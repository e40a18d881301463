"""Synthetic datasets and tiny params shared by the tests."""

import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import yaml
from keras import layers
from PIL import Image

from bench.sandbox import run_command, run_measured
from transfer.frozen.rows import fill_rows
from transfer.manifests.cache_meta import CacheMeta, write_cache_meta
from transfer.memo.store import NO_MEMO
from transfer.models.factories import (
    BACKBONE_LAYER,
    EXTRACTOR_LAYER,
    HEAD_LAYER,
    PREPROCESS_LAYER,
    PROBABILITIES_LAYER,
    build_classifier,
    build_feature_extractor,
    build_head,
)
from transfer.models.files import load_model, save_model
from transfer.params import AugmentParams, HeadParams
from transfer.paths import CACHE_DIR, EXTRACTOR_FILE, FINETUNED_DIR, HEAD_FILE
from transfer.tfdata import ImageTransform, read_record_index

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32  # the side of the model tests' images
N_CLASSES = 3
NO_VIEWS = AugmentParams(views=0)  # training on the clean images alone
CLASS_COLOURS = {"cat": (200, 40, 40), "dog": (40, 200, 40), "fox": (40, 40, 200)}


def write_image(path: Path, colour: tuple[int, int, int], seed: int, size: int = 48) -> None:
    """A JPEG of one dominant colour with noise, so a tiny model can tell the classes apart."""
    random = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + random.normal(0, 30, (size, size, 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path, format="JPEG")


def make_image_folder(root: Path, per_class: int = 12, size: int = 48) -> Path:
    """root/<class>/img_NN.jpg for three classes."""
    for offset, (name, colour) in enumerate(CLASS_COLOURS.items()):
        for index in range(per_class):
            write_image(root / name / f"img_{index:02d}.jpg", colour, offset * 1000 + index, size)
    return root


def tiny_params(source: Path) -> dict:
    """The project's params.yaml with a tiny, fast configuration and a random backbone."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["source"] = str(source)
    params["split"] = {"val": 0.25, "test": 0.25}
    params["image"]["size"] = 32
    params["backbone"].update(name="MobileNetV2", weights=None, batch_size=8)
    params["head"].update(epochs=3, batch_size=8)
    params["finetune"].update(epochs=2, batch_size=8, learning_rate=0.01)
    params["evaluate"]["grid_images"] = 6
    # Each evaluate with heat maps starts TensorFlow: only the repo whose picture test checks
    # them (tests/e2e/test_pipeline.py) turns them on.
    params["evaluate"]["heat_maps"] = False
    params["export"]["calibration_images"] = 4
    return params


def dvc(
    directory: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a dvc command in the repo (with `env` added to the environment) and fail the test
    with its output if it fails."""
    result = run_command([sys.executable, "-m", "dvc", *args], directory, env)
    assert result.returncode == 0, (
        f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    )
    return result


# The start of a script run in a fresh interpreter in which any import of this project's
# packages fails, as on a machine that has only TensorFlow and Keras.
WITHOUT_THE_PROJECT = """
import importlib.abc
import sys


class BlockProject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("stages", "transfer", "tests", "bench"):
            raise ImportError(f"{name} is blocked: plain Keras and TensorFlow only")
        return None


sys.meta_path.insert(0, BlockProject())
"""
PLAIN_KERAS_PREDICT = (
    WITHOUT_THE_PROJECT
    + """
import keras
import numpy as np

model = keras.models.load_model(sys.argv[1], safe_mode=True)
np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
"""
)


def assert_reloads_alike(model: keras.Model, directory: Path) -> None:
    """The model saved (save_model) and loaded back (load_model) predicts as it does."""
    save_model(model, directory / "model.keras")
    keras.backend.clear_session()
    loaded = load_model(directory / "model.keras")
    images = np.random.default_rng(1).uniform(0, 255, (4, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6
    )


def predict_with_plain_keras(model_file: Path, inputs: np.ndarray, scratch: Path) -> np.ndarray:
    """What `keras.models.load_model(model_file)` predicts for `inputs` in a process that
    cannot import this project."""
    scratch.mkdir(parents=True, exist_ok=True)
    np.save(scratch / "inputs.npy", inputs)
    run_without_the_project(
        PLAIN_KERAS_PREDICT, [str(model_file.resolve()), "inputs.npy", "outputs.npy"], scratch
    )
    return np.load(scratch / "outputs.npy")


def run_without_the_project(script: str, args: list[str], cwd: Path) -> None:
    """Run `script` (which starts with WITHOUT_THE_PROJECT) with `args` in a fresh
    interpreter in `cwd`, and fail the test with its error if it fails."""
    result = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=cwd, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]


def run_stage_measured(module: str, cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    """Run `python -m <module>` in `cwd`: (its result, its peak resident memory in MiB)."""
    return run_measured([sys.executable, "-m", module], cwd)


def tiny_classifier() -> tuple[keras.Model, keras.Model, keras.Model]:
    """(extractor, head, classifier): a random MobileNetV2 at SIZE px, seeded the same way."""
    keras.utils.set_random_seed(0)
    extractor = build_feature_extractor("MobileNetV2", SIZE, None)
    head = build_head(extractor.output_shape[-1], N_CLASSES, HeadParams())
    return extractor, head, build_classifier(extractor, head)


def forward_rows(
    forward, files: list[Path], width: int, transform: ImageTransform | None = None, batch: int = 8
) -> np.ndarray:
    """`forward`'s `width` outputs for each record of `files`, in the cached order, each
    image `transform`ed if given: what extract writes, with the memo off."""
    count = len(read_record_index(files).paths)
    rows = np.empty((count, width), np.float32)
    keys = [str(index) for index in range(count)]  # unused: the memo is off
    fill_rows(
        forward,
        files,
        (transform, keys),
        outputs=[rows],
        start=0,
        memo=NO_MEMO,
        namespace="features",
        batch_size=batch,
    )
    return rows


def make_review_project(root: Path) -> Path:
    """data/raw with 3 classes of 2 photos, the audit's reports on them, corrections.csv."""
    for offset, name in enumerate(("cat", "dog", "fox")):
        for index in range(2):
            write_image(
                root / "data/raw" / name / f"{index}.jpg", (40, 40, 40), offset * 10 + index
            )
    audit = root / "reports/audit"
    audit.mkdir(parents=True)
    (audit / "suspects.csv").write_text(
        "image,split,label,suggested,score\n"
        "cat/0.jpg,train,cat,dog,0.9\n"
        "dog/1.jpg,test,dog,fox,0.7\n"
        "fox/0.jpg,val,fox,cat,0.6\n"
    )
    (audit / "duplicates.csv").write_text(
        "image_a,image_b,similarity,split_a,split_b\ncat/1.jpg,dog/0.jpg,0.97,train,test\n"
    )
    (root / "corrections.csv").write_text("path,label\n")
    return root


COLOUR_BLOCK = 4  # colour_classifier's last block: one position per 4 x 4 pixels


def colour_classifier() -> tuple[keras.Model, keras.Model, keras.Model]:
    """(extractor, head, classifier) of the pipeline's shape at SIZE px whose class c is "how
    much of colour channel c" the photo has (cat red, dog green, fox blue: CLASS_COLOURS),
    patch by patch: its last block's channel c is each 4 x 4 patch's mean of channel c,
    pooled, then scored by the head's Dense. Grad-CAM's known answer: the map of a class
    peaks where its colour is."""
    pixels = keras.Input((SIZE, SIZE, 3))
    block = layers.Conv2D(N_CLASSES, COLOUR_BLOCK, strides=COLOUR_BLOCK, activation="relu")
    pooled = layers.GlobalAveragePooling2D()(block(pixels))
    backbone = keras.Model(pixels, pooled, name=BACKBONE_LAYER)
    kernel = np.zeros((COLOUR_BLOCK, COLOUR_BLOCK, 3, N_CLASSES), np.float32)
    for channel in range(N_CLASSES):
        kernel[:, :, channel, channel] = 1 / COLOUR_BLOCK**2
    block.set_weights([kernel, np.zeros(N_CLASSES, np.float32)])
    preprocess = keras.Sequential(
        [keras.Input((SIZE, SIZE, 3)), layers.Rescaling(1 / 255)], name=PREPROCESS_LAYER
    )
    images = keras.Input((SIZE, SIZE, 3))
    extractor = keras.Model(images, backbone(preprocess(images)), name=EXTRACTOR_LAYER)
    features = keras.Input((N_CLASSES,))
    output = layers.Dense(N_CLASSES, "softmax", name=PROBABILITIES_LAYER)
    head = keras.Model(features, output(layers.Dropout(0.5)(features)), name=HEAD_LAYER)
    output.set_weights([np.eye(N_CLASSES, dtype=np.float32) * 20, np.zeros(N_CLASSES, np.float32)])
    return extractor, head, build_classifier(extractor, head)


def save_tiny_classifier(project: Path) -> None:
    """What `dvc repro` leaves of a head-only classifier in a project (colour_classifier's
    extractor and head, models/finetuned without a model, the classes in the cache's meta):
    enough for the review's heat maps."""
    extractor, head, _ = colour_classifier()
    save_model(extractor, project / EXTRACTOR_FILE)
    save_model(head, project / HEAD_FILE)
    (project / FINETUNED_DIR).mkdir(parents=True)
    (project / CACHE_DIR).mkdir(parents=True)
    classes = tuple(sorted(CLASS_COLOURS))
    write_cache_meta(project / CACHE_DIR, CacheMeta(classes, SIZE, 90, {}, {}))
