"""Save and load the pipeline's .keras files: atomically, safely, byte-identical when unchanged."""

import json
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import keras

from transfer.atomic import atomic_output, disk_full_named
from transfer.errors import PipelineError
from transfer.models.factories import build_classifier

FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


def save_model(model: keras.Model, path: Path) -> None:
    """Save in .keras format, atomically, with the same bytes whenever the model is the same.

    Keras stamps the save time into the archive (metadata.json and an entry's date) and names
    shared objects by their memory address; without both, a rerun that computes the same
    weights would make DVC rerun every stage downstream.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.stem}.saving", dir=path.parent) as scratch:
        saved = Path(scratch) / path.name
        with disk_full_named(path):
            model.save(saved)
        with (
            atomic_output(path) as temporary,
            zipfile.ZipFile(saved) as source,
            zipfile.ZipFile(temporary, "w") as target,
        ):
            for entry in source.infolist():
                stable = zipfile.ZipInfo(entry.filename, date_time=FIXED_ZIP_TIME)
                stable.compress_type = entry.compress_type
                if entry.filename == "metadata.json":
                    metadata = json.loads(source.read(entry))
                    metadata.pop("date_saved", None)
                    target.writestr(stable, json.dumps(metadata))
                    continue
                if entry.filename == "config.json":
                    config = renumber_shared_objects(json.loads(source.read(entry)))
                    target.writestr(stable, json.dumps(config))
                    continue
                with source.open(entry) as reader, target.open(stable, "w") as writer:
                    shutil.copyfileobj(reader, writer, 1 << 20)


def renumber_shared_objects(config: Any, numbers: dict[int, int] | None = None) -> Any:
    """The config with each `shared_object_id` (an id() in memory) replaced by 0, 1, 2...

    Numbers follow the order of first appearance, so sharing is kept and the text is stable.
    """
    numbers = {} if numbers is None else numbers
    if isinstance(config, list):
        return [renumber_shared_objects(item, numbers) for item in config]
    if not isinstance(config, dict):
        return config
    renumbered = {}
    for key, value in config.items():
        if key == "shared_object_id":
            renumbered[key] = numbers.setdefault(value, len(numbers))
        else:
            renumbered[key] = renumber_shared_objects(value, numbers)
    return renumbered


def load_model(path: Path) -> keras.Model:
    """A model saved by this pipeline, loaded in Keras safe mode (no pickled code runs).

    The models hold built-in Keras layers only, so plain `keras.models.load_model` opens them
    too, without this package.
    """
    try:
        return keras.models.load_model(path, safe_mode=True)
    except (OSError, ValueError, TypeError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise PipelineError(f"{path}: not a model this pipeline can load ({first_line})") from None


def load_classifier(files: list[Path]) -> keras.Model:
    """The whole classifier from its files (finetuned.classifier_files): one classifier, or
    the extractor and the head, assembled here."""
    if len(files) == 1:
        return load_model(files[0])
    extractor_file, head_file = files
    return build_classifier(load_model(extractor_file), load_model(head_file))
