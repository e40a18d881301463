"""Which process of a multi-worker cluster writes the outputs: the chief, read from TF_CONFIG.

Every worker runs the same stage (`distribute: multi_worker`); only the chief's outputs are
kept. The others write theirs into a temporary directory that is deleted afterwards, as in
TensorFlow's multi-worker Keras tutorial: they still save, because saving a distributed model
may need every worker. No TensorFlow here, so that a stage that trains nothing can tell too.
"""

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from transfer.errors import PipelineError

log = logging.getLogger(__name__)
TF_CONFIG = "TF_CONFIG"


def is_chief(distribute: str) -> bool:
    """Whether this process keeps its outputs: always, unless `distribute` is multi_worker
    and TF_CONFIG names another task than the chief (type `chief`, or else worker 0)."""
    text = os.environ.get(TF_CONFIG, "")
    if distribute != "multi_worker" or not text.strip():
        return True
    try:
        config = json.loads(text)
        task = config.get("task") or {}
        kind, index = task.get("type"), int(task.get("index", 0))
        has_chief = bool(config.get("cluster", {}).get("chief"))
    except (ValueError, AttributeError, TypeError) as error:
        raise PipelineError(f"{TF_CONFIG} is not a TensorFlow cluster config ({error})") from None
    if kind is None or kind == "chief":
        return True
    return kind == "worker" and index == 0 and not has_chief


@contextmanager
def output_root(distribute: str) -> Iterator[Path]:
    """The directory this process writes its outputs under (their paths are relative): the
    working directory on the chief, a temporary one, deleted after the block, elsewhere."""
    if is_chief(distribute):
        yield Path()
        return
    with tempfile.TemporaryDirectory(prefix="transfer-worker-") as directory:
        log.info("not the chief: the outputs go to %s, deleted at the end", directory)
        yield Path(directory)
