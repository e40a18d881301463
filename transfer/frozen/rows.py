"""Frozen forward passes row by row through the memo: each row (one variant of one image)
comes from the memo when it holds it; the others are computed in batches, only those images
decoded, and stored. The rows are written in the records' order, so the output is the same
array, byte for byte, whichever rows the memo had: the frozen models give each image the
same output whatever else is in its batch (checked by the tests)."""

import io
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from transfer.memo.store import Memo, MemoCount, key
from transfer.tfdata import ImageTransform, RecordIndex, make_dataset


def row_keys(version: str, index: RecordIndex, variant: object) -> list[str]:
    """The memo keys of one variant of every record of an index (the clean image, a view,
    the mirror image), for a forward pass of `version`."""
    return [
        key(version, image, photo, variant)
        for image, photo in zip(index.images, index.keys, strict=True)
    ]


def built_on_first_call(make: Callable[[], Callable[[Any], Any]]) -> Callable[[Any], Any]:
    """A forward pass that is made (a TFLite conversion, say) only if it is ever called: a
    run whose rows all come from the memo skips making it."""
    made: list[Callable[[Any], Any]] = []

    def forward(inputs: Any) -> Any:
        if not made:
            made.append(make())
        return made[0](inputs)

    return forward


def pack(values: Sequence[np.ndarray]) -> bytes:
    """Arrays as one payload: .npy files one after the other."""
    buffer = io.BytesIO()
    for value in values:
        np.save(buffer, np.ascontiguousarray(value), allow_pickle=False)
    return buffer.getvalue()


def unpack(payload: bytes, count: int) -> list[np.ndarray] | None:
    """The `count` arrays of a payload, or None if it does not hold them."""
    buffer = io.BytesIO(payload)
    try:
        values = [np.load(buffer, allow_pickle=False) for _ in range(count)]
    except (ValueError, OSError, EOFError):
        return None
    return values if buffer.tell() == len(payload) else None


def fill_rows(
    forward: Callable[[Any], Any],
    files: list[Path],
    block: tuple[ImageTransform | None, Sequence[str]],
    *,
    outputs: Sequence[Any],
    start: int,
    memo: Memo,
    namespace: str,
    batch_size: int,
) -> MemoCount:
    """Write rows start, start + 1, ... of `outputs` (one array per output of `forward`, or
    anything that takes `array[a:b] = rows` in order, such as an NpyWriter): row i is
    `forward`'s output for the i-th image of the TFRecord `files` (in the cached order),
    through the `block`'s transform if it has one, whose memo key is the block's keys[i].

    Entries missing from the memo are computed in batches of `batch_size`, only those images
    read and decoded, and stored; an entry that disappears or fails its check between the
    look-up and the read is computed alone.
    """
    transform, keys = block
    missing = np.array([not memo.has(namespace, entry) for entry in keys], dtype=bool)
    computed = _computed_rows(forward, files, transform, missing, batch_size)
    progress = keras.utils.Progbar(
        int(missing.sum()), unit_name="image", verbose=int(missing.any())
    )
    count = MemoCount()
    for index, entry in enumerate(keys):
        values = None
        if not missing[index]:
            payload = memo.get(namespace, entry)
            values = None if payload is None else unpack(payload, len(outputs))
        if values is None:
            if missing[index]:
                values = next(computed)
                progress.add(1)
            else:  # vanished or damaged since the look-up
                only = np.zeros(len(keys), dtype=bool)
                only[index] = True
                values = next(_computed_rows(forward, files, transform, only, 1))
            memo.put(namespace, entry, pack(values))
            count.computed += 1
        else:
            count.reused += 1
        row = start + index
        for output, value in zip(outputs, values, strict=True):
            output[row : row + 1] = value[None]
    return count


def store_rows(
    forward: Callable[[Any], Any],
    files: list[Path],
    block: tuple[ImageTransform | None, Sequence[str]],
    *,
    memo: Memo,
    namespace: str,
    batch_size: int,
) -> int:
    """Compute and store the rows of fill_rows that the memo does not hold yet, and write
    none: rows that no output needs now but a later run will. Returns how many it computed
    (none with the memo off: there is nowhere to keep them)."""
    if memo.root is None:
        return 0
    transform, keys = block
    missing = np.array([not memo.has(namespace, entry) for entry in keys], dtype=bool)
    entries = (entry for entry, absent in zip(keys, missing, strict=True) if absent)
    computed = 0
    for entry, values in zip(
        entries, _computed_rows(forward, files, transform, missing, batch_size), strict=True
    ):
        memo.put(namespace, entry, pack(values))
        computed += 1
    return computed


def _computed_rows(
    forward: Callable[[Any], Any],
    files: list[Path],
    transform: ImageTransform | None,
    only: np.ndarray,
    batch_size: int,
) -> Iterator[list[np.ndarray]]:
    """`forward`'s outputs, row by row, for the images that `only` marks, in order."""
    if not only.any():
        return
    dataset = make_dataset(files, batch_size, transform=transform, only=only)
    for pixels, *_ in dataset:
        values = [np.asarray(value) for value in keras.tree.flatten(forward(pixels))]
        for row in range(len(values[0])):
            yield [value[row] for value in values]
