"""The review page's heat maps: Grad-CAM of the pipeline's classifier on a finding's photo,
for the class the audit suggests, else the class the classifier predicts.

Computed when the page asks for one, so TensorFlow loads then and not before: the page opens
at once. Each is kept for the server's life, keyed by the photo's bytes, the class and the
classifier's files (their size and time), so that a card seen again costs nothing and a
photo or classifier changed since is computed again, the classifier loaded again.
"""

import base64
import hashlib
import io
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from transfer.errors import PipelineError
from transfer.heatmaps.overlay import overlay
from transfer.image_files import NO_PIXEL_LIMIT, ImageRejected, decode_rgb
from transfer.manifests.cache_meta import read_cache_meta
from transfer.models.head_only import classifier_files
from transfer.paths import CACHE_DIR, EXTRACTOR_FILE, FINETUNED_DIR, HEAD_FILE, META_FILE
from transfer.review.guard import BadRequest

if TYPE_CHECKING:  # the module itself loads TensorFlow: only at the first heat map
    from transfer.heatmaps.gradcam import GradCam

PICTURE_SIDE = 256  # the longer side of a heat map's picture: a card shows it about 160 wide
JPEG_QUALITY = 85


def _jpeg_url(picture: Image.Image) -> str:
    """The picture as a data: URL, which the page's policy admits as an image (img-src)."""
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def heat_map(
    gradcam: "GradCam", data: bytes, wanted: int | None, classes: tuple[str, ...]
) -> dict:
    """{class, probability, image} of a photo (its bytes) by a GradCam: the class mapped
    (`wanted`, else the one predicted), the probability the classifier gives it, and the photo
    tinted by the map, as a data: URL."""
    try:
        photo = decode_rgb(data, NO_PIXEL_LIMIT)
        explained = gradcam.explain(gradcam.pixels(data)[None], [wanted])
    except ImageRejected as reason:
        raise BadRequest(
            HTTPStatus.UNPROCESSABLE_ENTITY, f"not a usable photo: {reason}"
        ) from None
    index = explained.classes[0]
    photo.thumbnail((PICTURE_SIDE, PICTURE_SIDE))
    return {
        "class": classes[index],
        "probability": round(float(explained.probabilities[0, index]), 4),
        "image": _jpeg_url(overlay(photo, explained.maps[0])),
    }


@dataclass
class HeatMaps:
    """The heat maps of a project's photos (`photos`, its data/raw) by its classifier."""

    project: Path
    photos: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: dict[tuple, dict] = field(default_factory=dict)
    loaded: tuple | None = None  # (the classifier files' signature, their GradCam)

    def _classifier(self) -> tuple[list[Path], tuple, tuple[str, ...]]:
        """The classifier's files, their signature and its classes; 404 before `dvc repro`."""
        project = self.project
        files = classifier_files(
            project / FINETUNED_DIR, project / EXTRACTOR_FILE, project / HEAD_FILE
        )
        if not (project / CACHE_DIR / META_FILE).is_file() or not all(map(Path.is_file, files)):
            raise BadRequest(HTTPStatus.NOT_FOUND, "no classifier yet: run `dvc repro`")
        signature = tuple((f.as_posix(), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
        return files, signature, read_cache_meta(project / CACHE_DIR).classes

    def _gradcam(self, files: list[Path], signature: tuple) -> "GradCam":
        """The classifier's GradCam, loaded at the first heat map and when its files change."""
        if self.loaded is None or self.loaded[0] != signature:
            # Imported only here: TensorFlow takes seconds to load, the page none.
            from transfer.heatmaps.gradcam import load_gradcam

            try:
                self.loaded = (signature, load_gradcam(files))
            except PipelineError as error:
                raise BadRequest(HTTPStatus.NOT_FOUND, str(error)) from None
        return self.loaded[1]

    def answer(self, photo: str, wanted: str | None) -> dict:
        """The heat_map of a photo of data/raw for the class `wanted` (None, or a class the
        classifier does not have: the one it predicts), from memory when seen before."""
        files, signature, classes = self._classifier()
        file = self.photos / photo
        if not file.is_file():
            raise BadRequest(HTTPStatus.NOT_FOUND, "no such photo")
        data = file.read_bytes()
        key = (signature, hashlib.sha256(data).hexdigest(), wanted)
        with self.lock:  # one at a time: two at once would only share the same cores
            if key not in self.answers:
                gradcam = self._gradcam(files, signature)
                index = classes.index(wanted) if wanted in classes else None
                self.answers[key] = heat_map(gradcam, data, index, classes)
            return self.answers[key]
