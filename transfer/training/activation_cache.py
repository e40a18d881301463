"""Cached activations for fine-tuning: the outputs of the frozen layers below the cut for every
variant of every image, from the memo or computed once, kept in memory or in memory-mapped
files."""

import math
from collections.abc import Callable, Sequence
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from transfer.errors import PipelineError
from transfer.frozen.rows import built_on_first_call, fill_rows
from transfer.frozen.version import forward_version
from transfer.inference import NpyWriter
from transfer.litert import engine_for, frozen_forward
from transfer.memo.store import Memo, MemoCount
from transfer.models.cut import below_cut
from transfer.views import Block

SAMPLE_ROWS = 256  # rows of the cache check_stored looks at
MEMO_SPACE = "activations"


def below_cut_forward(
    extractor: keras.Model, lower: keras.Model, engine: str
) -> tuple[Callable[[Any], Any], str]:
    """Raw pixels -> the tensors crossing the cut on `engine`, in the current strategy, and
    its memo version. It is converted to TFLite only if called: when some image is not in
    the memo."""
    below = below_cut(extractor, lower)
    strategy = tf.distribute.get_strategy()
    forward = built_on_first_call(lambda: frozen_forward(below, engine, strategy))
    layers = [(layer.name, type(layer).__name__) for layer in lower.layers]
    version = forward_version(below, engine_for(engine, strategy), "below the cut", layers)
    return forward, version


def activation_bytes(lower: keras.Model, count: int, dtype: str) -> int:
    """Bytes the cached activations of `count` images take stored as `dtype`."""
    per_image = sum(math.prod(tensor.shape[1:]) for tensor in lower.outputs)
    return per_image * count * np.dtype(dtype).itemsize


def cache_activations(
    forward: Callable[[Any], Any],
    files: list[Path],
    blocks: Sequence[Block],
    *,
    lower: keras.Model,
    directory: Path | None,
    dtype: str,
    memo: Memo,
    batch_size: int,
) -> tuple[tuple[np.ndarray, ...], MemoCount]:
    """`forward`'s outputs (pixels -> the tensors crossing the cut, `lower`'s outputs) for
    every record of the TFRecord `files` in each of the `blocks`, one block after the other,
    stored as `dtype`; and how many rows the memo gave.

    They go into memory, or into .npy files in `directory` when given, read back as
    read-only memory maps.
    """
    rows = sum(len(keys) for _, keys in blocks)
    shapes = [(rows, *tensor.shape[1:]) for tensor in lower.outputs]
    files_out = (
        [] if directory is None else [directory / f"cut_{i}.npy" for i in range(len(shapes))]
    )
    count = MemoCount()
    with ExitStack() as stack:
        if directory is None:
            outputs = [np.empty(shape, dtype) for shape in shapes]
        else:
            outputs = [
                stack.enter_context(closing(NpyWriter(file, shape, np.dtype(dtype))))
                for file, shape in zip(files_out, shapes, strict=True)
            ]
        start = 0
        for block in blocks:
            done = fill_rows(
                forward, files, block, outputs=outputs, start=start, memo=memo,
                namespace=MEMO_SPACE, batch_size=batch_size,
            )  # fmt: skip
            count.add(done)
            start += len(block[1])
    if directory is not None:
        outputs = [np.load(file, mmap_mode="r") for file in files_out]
    return tuple(outputs), count


def check_stored(activations: tuple[np.ndarray, ...], dtype: str) -> None:
    """Fail, naming the param, when float16 storage lost the activations: values beyond its
    range (65504) become infinite, and below about 6e-8 zero, as those of a backbone with
    random weights do. Looks at the first rows only, so a memory map is barely read."""
    if dtype != "float16":
        return
    sample = [np.asarray(array[:SAMPLE_ROWS], np.float32) for array in activations]
    if all(not rows.any() for rows in sample) or not all(np.isfinite(s).all() for s in sample):
        raise PipelineError(
            "finetune.activation_dtype=float16 cannot hold the activations below the cut "
            "(all zero or infinite); set finetune.activation_dtype: float32"
        )
