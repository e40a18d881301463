"""Phone photos upright in every entry point: one photo stored with each of the 8 EXIF
orientations gives the same pixels and the same class through the training import,
`classify` and both SavedModel signatures, in this process and in one that cannot import
the project."""

from io import BytesIO
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, ImageOps

from tests.helpers import WITHOUT_THE_PROJECT, run_without_the_project
from transfer.export.orientation import apply_orientation, exif_orientation
from transfer.export.serving import decode_resized, export_saved_model
from transfer.litert import serving_function, to_tflite
from transfer.predict import load_forward, predict
from transfer.records.encoding import resize_jpeg

pytestmark = pytest.mark.model
SIZE, QUALITY = 32, 95
# The upright photo, 48 x 64: red top-left quadrant, green top-right, grey below.
RED, GREEN, GREY = (220, 30, 30), (30, 220, 30), (128, 128, 128)
# Pillow's transpose that turns a photo stored with orientation N upright (exif_transpose's),
# and the one that stores an upright photo so (its inverse).
UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
STORED = {**UPRIGHT, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
# The classes: where the green and the red quadrants are (corners 0 1 / 2 3), the 8 ways a
# turned or mirrored photo can hold them. Upright: green at 1, red at 0.
PLACES = [(g, r) for g in range(4) for r in range(4) if bin(g ^ r).count("1") == 1]
CLASSES = [f"green{g}_red{r}" for g, r in PLACES]
UPRIGHT_CLASS = CLASSES[PLACES.index((1, 0))]


def quadrant_classifier() -> keras.Model:
    """A classifier whose class is where the green and red quadrants of a photo are: the mean
    colour of each quadrant, scored by green minus red (green's corner) plus red minus green
    (red's)."""
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    corners = keras.layers.Flatten()(keras.layers.AveragePooling2D(SIZE // 2)(inputs))
    scores = keras.layers.Dense(len(PLACES), activation="softmax")(corners)
    model = keras.Model(inputs, scores)
    kernel = np.zeros((12, len(PLACES)), np.float32)
    for index, (green, red) in enumerate(PLACES):
        kernel[3 * green + 1, index] += 0.05
        kernel[3 * green, index] -= 0.05
        kernel[3 * red, index] += 0.05
        kernel[3 * red + 1, index] -= 0.05
    model.layers[-1].set_weights([kernel, np.zeros(len(PLACES), np.float32)])
    return model


def upright_photo() -> Image.Image:
    pixels = np.full((48, 64, 3), GREY, np.uint8)
    pixels[:24, :32], pixels[:24, 32:] = RED, GREEN
    return Image.fromarray(pixels)


def stored_photo(orientation: int) -> bytes:
    """The upright photo stored as a camera does with `orientation` in its EXIF."""
    photo = upright_photo()
    stored = photo.transpose(STORED[orientation]) if orientation in STORED else photo
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = BytesIO()
    stored.save(buffer, format="JPEG", quality=QUALITY, exif=exif)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the photos (orientation1.jpg ... orientation8.jpg), the quadrant
    classifier's float TFLite model and its SavedModel."""
    directory = tmp_path_factory.mktemp("oriented")
    model = quadrant_classifier()
    serve = serving_function(model)
    export_saved_model(serve, CLASSES, SIZE, QUALITY, directory)
    (directory / "model.tflite").write_bytes(to_tflite(serve))
    for orientation in range(1, 9):
        (directory / f"orientation{orientation}.jpg").write_bytes(stored_photo(orientation))
    return directory


def photos(directory: Path, orientations: range | list[int]) -> list[Path]:
    return [directory / f"orientation{orientation}.jpg" for orientation in orientations]


def test_the_graph_turns_each_orientation_upright_as_pillow_does(exported: Path) -> None:
    for photo in photos(exported, range(1, 9)):
        data = photo.read_bytes()
        orientation = int(exif_orientation(tf.constant(data)))
        assert f"orientation{orientation}" == photo.stem
        in_graph = apply_orientation(tf.io.decode_jpeg(data), orientation).numpy()
        pillow = np.asarray(ImageOps.exif_transpose(Image.open(photo)))
        assert in_graph.shape == pillow.shape == (48, 64, 3), photo.name
        gap = np.abs(in_graph.astype(np.int16) - pillow).mean()
        assert gap < 1.0, (photo.name, gap)  # measured: below 0.3; turned wrong: above 60
    # A photo without EXIF, a PNG, and bytes that are no photo are upright.
    buffer = BytesIO()
    upright_photo().save(buffer, format="PNG")
    plain = BytesIO()
    upright_photo().save(plain, format="JPEG")
    for data in (buffer.getvalue(), plain.getvalue(), b"", b"\xff\xd8\xff\xe1\x00"):
        assert int(exif_orientation(tf.constant(data))) == 1


def test_the_import_classify_and_both_signatures_find_the_upright_class(
    exported: Path,
) -> None:
    oriented = photos(exported, range(1, 9))
    data = [photo.read_bytes() for photo in oriented]
    imported = np.stack([tf.io.decode_jpeg(resize_jpeg(d, SIZE, QUALITY)).numpy() for d in data])
    in_graph = np.stack([decode_resized(tf.constant(d), SIZE, QUALITY).numpy() for d in data])
    assert np.abs(in_graph - imported).mean(axis=(1, 2, 3)).max() < 2.0  # the resizes' gap
    forward, _, _ = load_forward(exported / "model.tflite")
    classified = predict(forward, SIZE, CLASSES, oriented, 1)
    served = tf.saved_model.load(str(exported / "saved_model"))
    by_pixels = served.signatures["serving_default"](image=tf.constant(imported, tf.float32))
    by_bytes = served.signatures["classify_image_bytes"](image_bytes=tf.constant(data))
    model = quadrant_classifier()
    classes = {
        "import": [CLASSES[i] for i in model.predict(imported, verbose=0).argmax(axis=1)],
        "classify": [result["predictions"][0]["class"] for result in classified],
        "serving_default": [label.decode() for label in by_pixels["class_label"].numpy()],
        "classify_image_bytes": [label.decode() for label in by_bytes["class_label"].numpy()],
    }
    assert classes == {name: [UPRIGHT_CLASS] * 8 for name in classes}
    # Decoded without their orientation, the photos land in 8 different classes: the check
    # above would catch an entry point that ignores it.
    ignored = [tf.image.resize(tf.io.decode_jpeg(d), (SIZE, SIZE)).numpy() for d in data]
    assert len(set(model.predict(np.stack(ignored), verbose=0).argmax(axis=1))) == 8


# Run in a fresh interpreter that cannot import this project, as TensorFlow Serving or a
# user's script would: the bytes signature's labels, one a line.
PLAIN_TENSORFLOW_LABELS = (
    WITHOUT_THE_PROJECT
    + """
from pathlib import Path

import tensorflow as tf

served = tf.saved_model.load(sys.argv[1])
photos = [Path(name).read_bytes() for name in sys.argv[3:]]
labels = served.signatures["classify_image_bytes"](image_bytes=tf.constant(photos))
names = [label.decode() for label in labels["class_label"].numpy()]
Path(sys.argv[2]).write_text("".join(f"{name}\\n" for name in names))
"""
)


def test_plain_tensorflow_serves_turned_photos_upright(exported: Path, tmp_path: Path) -> None:
    turned = [str(photo) for photo in photos(exported, [3, 6, 8])]
    args = [str(exported / "saved_model"), str(tmp_path / "labels.txt"), *turned]
    run_without_the_project(PLAIN_TENSORFLOW_LABELS, args, tmp_path)
    assert (tmp_path / "labels.txt").read_text().splitlines() == [UPRIGHT_CLASS] * 3
