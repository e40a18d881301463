"""Run a model over a dataset in batches: one traced call (or one split across a distribution
strategy's replicas), outputs in arrays, a Keras progress bar; and the writer that streams
rows into a .npy file (frozen.rows.fill_rows writes the frozen forward passes' rows with it)."""

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from transfer.tfdata import ImageTransform, make_dataset


def traced_call(model: keras.Model) -> Callable[[Any], Any]:
    """The model's inference call, traced once: much faster per batch than model.predict's
    per-call set-up, and BatchNormalization and Dropout in inference mode."""
    return tf.function(lambda inputs: model(inputs, training=False), reduce_retracing=True)


def replicated_call(model: keras.Model, strategy: tf.distribute.Strategy) -> Callable[[Any], Any]:
    """The model's inference call with each batch split across the strategy's replicas, on
    every worker of a cluster, and the outputs gathered back in the batch's order.

    Every worker must make the same calls with the same batches. A batch is padded to a
    multiple of the replicas by repeating its last row (those outputs are dropped), so that
    no replica gets an empty part: TensorFlow's CPU convolutions fail on one.
    """
    replicas = strategy.num_replicas_in_sync

    @tf.function(reduce_retracing=True)
    def run(parts: Any) -> Any:
        outputs = strategy.run(lambda inputs: model(inputs, training=False), args=(parts,))
        return strategy.gather(outputs, axis=0)

    def call(inputs: Any) -> Any:
        inputs = np.asarray(inputs)
        size = -(-len(inputs) // replicas)  # rows per replica
        padding = np.repeat(inputs[-1:], size * replicas - len(inputs), axis=0)
        padded = np.concatenate([inputs, padding])

        def part(context: tf.distribute.experimental.ValueContext) -> np.ndarray:
            start = context.replica_id_in_sync_group * size
            return padded[start : start + size]

        parts = strategy.experimental_distribute_values_from_function(part)
        return keras.tree.map_structure(lambda output: output[: len(inputs)], run(parts))

    return call


def inference_call(
    model: keras.Model, strategy: tf.distribute.Strategy | None = None
) -> Callable[[Any], Any]:
    """traced_call, or replicated_call under a strategy with more than one replica."""
    if strategy is not None and strategy.num_replicas_in_sync > 1:
        return replicated_call(model, strategy)
    return traced_call(model)


def predict_probabilities(model: keras.Model, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs for every row of `inputs` (images or features), a batch at a time."""
    return predict_array(traced_call(model), inputs, model.output_shape[-1], batch_size)


def run_on_records(
    forward: Callable[[Any], Any],
    width: int,
    files: list[Path],
    count: int,
    batch_size: int,
    transform: ImageTransform | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(`forward`'s `width` float32 outputs, integer labels) for the first `count` images of
    a split's TFRecords, in the cached order, each `transform`ed if given; the images stream
    through."""
    dataset = make_dataset(files, batch_size, transform=transform)
    batches = dataset.unbatch().take(count).batch(batch_size)
    rows = [((width,), np.float32), ((), np.int64)]
    outputs, labels = run_in_batches(forward, batches, count, rows)
    return outputs, labels


class NpyWriter:
    """A .npy file written front to back, a block of rows at a time (`writer[a:b] = rows`).

    Unlike a writable memory map, whose written pages stay in the process's resident memory
    until the map closes (extract's memory grew with the dataset: docs/benchmarks.md), what
    is written here leaves the process: its memory does not grow with the file.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.file = path, path.open("wb")
        self.dtype, self.written = np.dtype(dtype), 0
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        with self._naming_the_file():
            np.lib.format.write_array_header_1_0(self.file, {**header, "shape": shape})

    def __setitem__(self, rows: slice, values: np.ndarray) -> None:
        if rows.start != self.written:
            raise ValueError(f"rows {rows.start}:{rows.stop} after {self.written} written")
        with self._naming_the_file():
            self.file.write(np.ascontiguousarray(values, self.dtype).tobytes())
        self.written = rows.stop

    @contextmanager
    def _naming_the_file(self) -> Iterator[None]:
        """A failed write names this file (a write's OSError names none)."""
        try:
            yield
        except OSError as error:
            raise OSError(error.errno, error.strerror, str(self.path)) from None

    def close(self) -> None:
        with self._naming_the_file():  # the last buffered rows are written here
            self.file.close()


def run_in_batches(
    forward: Callable[[Any], Any],
    batches: Iterable[tuple[Any, ...]],
    count: int,
    rows: Sequence[tuple[tuple[int, ...], Any]],
    progress_bar: bool = True,
) -> list[np.ndarray]:
    """Apply `forward` to the first item of every batch, in order.

    Each batch is (inputs, *carried): the carried items (labels, say) are stored unchanged
    beside the outputs. `rows` gives the (shape, dtype) of one row of each array: one per
    output of `forward`, then one per carried item. Returns those arrays, `count` rows each.
    The progress bar writes to stdout: turn it off where stdout is the result.
    """
    arrays = [np.empty((count, *shape), np.dtype(dtype)) for shape, dtype in rows]
    progress = keras.utils.Progbar(count, unit_name="image", verbose=int(progress_bar))
    done = 0
    for inputs, *carried in batches:
        values = [*keras.tree.flatten(forward(inputs)), *carried]
        size = len(values[0])
        if done + size > count:
            raise RuntimeError(f"expected {count} items, got more")
        for array, value in zip(arrays, values, strict=True):
            array[done : done + size] = np.asarray(value)
        done += size
        progress.update(done)
    if done != count:
        raise RuntimeError(f"expected {count} items, read {done}")
    return arrays


def predict_array(
    forward: Callable[[Any], Any],
    inputs: np.ndarray,
    width: int,
    batch_size: int,
    progress_bar: bool = True,
) -> np.ndarray:
    """`forward`'s output (`width` float32 values per row) for every row of an in-memory
    array, fed as float32 batches of `batch_size` rows."""
    batches = (
        (inputs[start : start + batch_size].astype(np.float32),)
        for start in range(0, len(inputs), batch_size)
    )
    rows = [((width,), np.float32)]
    return run_in_batches(forward, batches, len(inputs), rows, progress_bar=progress_bar)[0]
