"""Grad-CAM: a known answer on a model built for it, and the pipeline's own classifiers."""

import base64
import io
import json
import os
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tests.helpers import (
    CLASS_COLOURS,
    COLOUR_BLOCK,
    SIZE,
    colour_classifier,
    make_review_project,
    save_tiny_classifier,
    tiny_classifier,
    write_image,
)
from transfer.heatmaps.gradcam import load_gradcam, split_classifier
from transfer.image_files import NO_PIXEL_LIMIT, resize_rgb
from transfer.models.files import load_classifier, save_model
from transfer.paths import EXTRACTOR_FILE, HEAD_FILE
from transfer.review.server import ReviewServer

pytestmark = pytest.mark.model
RED_AT, GREEN_AT = (4, 2), (1, 6)  # where the squares are, in block positions


def two_squares(red: int = 250, green: int = 150) -> np.ndarray:
    """A dark photo with a red square at RED_AT and a green one at GREEN_AT (block positions):
    colour_classifier's cat and dog."""
    image = np.random.default_rng(0).uniform(0, 20, (1, SIZE, SIZE, 3)).astype(np.float32)
    for (row, column), channel, value in ((RED_AT, 0, red), (GREEN_AT, 1, green)):
        rows, columns = (
            slice(row * COLOUR_BLOCK, (row + 1) * COLOUR_BLOCK),
            slice(column * COLOUR_BLOCK, (column + 1) * COLOUR_BLOCK),
        )
        image[0, rows, columns, channel] = value
    return image


def peak(heat: np.ndarray) -> tuple[int, int]:
    return tuple(int(i) for i in np.unravel_index(heat.argmax(), heat.shape))


def test_the_map_peaks_where_the_class_is_and_nowhere_else() -> None:
    gradcam = split_classifier(colour_classifier()[2])
    explained = gradcam.explain(two_squares(), [0])
    heat = explained.maps[0]
    assert heat.shape == (SIZE // COLOUR_BLOCK, SIZE // COLOUR_BLOCK)
    assert peak(heat) == RED_AT and heat[RED_AT] == pytest.approx(1.0)
    others = np.delete(heat.ravel(), np.ravel_multi_index(RED_AT, heat.shape))
    assert others.max() < 0.1  # the green square and the background show nothing of red
    green = gradcam.explain(two_squares(), [1]).maps[0]
    assert peak(green) == GREEN_AT and green[RED_AT] < 0.1


def test_without_a_class_the_map_is_for_the_predicted_one() -> None:
    gradcam = split_classifier(colour_classifier()[2])
    explained = gradcam.explain(
        np.concatenate([two_squares(), two_squares(50, 250)]), [None, None]
    )
    assert explained.classes == [0, 1]  # red wins the first photo, green the second
    assert peak(explained.maps[0]) == RED_AT and peak(explained.maps[1]) == GREEN_AT


def test_the_pipeline_classifiers_split_into_the_same_probabilities(tmp_path: Path) -> None:
    """From the extractor's and head's files (unfreeze: 0) and from one fine-tuned file."""
    extractor, head, classifier = tiny_classifier()
    images = np.random.default_rng(1).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(classifier(images, training=False))
    for name, model in (("extractor", extractor), ("head", head), ("classifier", classifier)):
        save_model(model, tmp_path / f"{name}.keras")
    for files in (
        [tmp_path / "extractor.keras", tmp_path / "head.keras"],
        [tmp_path / "classifier.keras"],
    ):
        gradcam = load_gradcam(files)
        explained = gradcam.explain(images, [None, 2, 0])
        assert gradcam.size == SIZE
        np.testing.assert_allclose(explained.probabilities, expected, atol=1e-5)
        assert explained.classes == [int(expected[0].argmax()), 2, 0]
        assert explained.maps.shape == (3, 1, 1)  # MobileNetV2's last block at 32 px
        assert ((explained.maps >= 0) & (explained.maps <= 1)).all()


@pytest.fixture
def review(tmp_path: Path) -> Iterator[tuple[ReviewServer, str]]:
    """A review project with a head-only classifier, served."""
    project = make_review_project(tmp_path / "project")
    (project / "reports/audit/outliers.csv").write_text("image,score\ndog/0.jpg,0.93\n")
    save_tiny_classifier(project)
    server = ReviewServer(project, 0, "token")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/api/heatmap?token=token"
    server.shutdown()
    server.server_close()


def heat_map(url: str, item: str, photo: str | None = None) -> dict:
    query = urllib.parse.urlencode({"item": item, "photo": photo or item})
    with urllib.request.urlopen(f"{url}&{query}") as answer:
        return json.loads(answer.read())


def test_the_review_draws_the_suggested_or_predicted_class_once_per_photo(review) -> None:
    server, url = review
    suspect = heat_map(url, "cat/0.jpg")  # suggested: dog
    assert suspect["class"] == "dog" and 0 < suspect["probability"] < 1
    assert suspect["image"].startswith("data:image/jpeg;base64,")
    with Image.open(io.BytesIO(base64.b64decode(suspect["image"].split(",")[1]))) as picture:
        assert picture.size == (48, 48)  # the photo's own size, tinted
    outlier = heat_map(url, "outlier:dog/0.jpg", "dog/0.jpg")  # no suggestion: the predicted
    project = server.heat_maps.project
    classifier = load_classifier([project / EXTRACTOR_FILE, project / HEAD_FILE])
    photo = resize_rgb((server.photos / "dog/0.jpg").read_bytes(), SIZE, NO_PIXEL_LIMIT)
    expected = keras.ops.convert_to_numpy(classifier(np.asarray(photo, np.float32)[None]))[0]
    assert outlier["class"] == sorted(CLASS_COLOURS)[int(expected.argmax())]
    assert outlier["probability"] == pytest.approx(expected.max(), abs=1e-4)
    gradcam, answers = server.heat_maps.loaded[1], len(server.heat_maps.answers)
    assert heat_map(url, "cat/0.jpg") == suspect  # seen again: from memory
    assert len(server.heat_maps.answers) == answers and server.heat_maps.loaded[1] is gradcam
    write_image(server.photos / "cat/0.jpg", (0, 200, 0), 5)  # a new photo: a new map
    assert heat_map(url, "cat/0.jpg")["image"] != suspect["image"]
    head = project / HEAD_FILE
    os.utime(head, ns=(head.stat().st_mtime_ns + 10**9,) * 2)  # `dvc repro` trained again
    heat_map(url, "cat/0.jpg")
    assert server.heat_maps.loaded[1] is not gradcam  # the classifier was loaded again
