"""Near-duplicate images: pairs whose feature vectors point the same way."""

import numpy as np

BLOCK_ROWS = 512  # rows compared with all others at once: memory is BLOCK_ROWS x N floats


def unit_rows(features: np.ndarray) -> np.ndarray:
    """The rows scaled to length 1 (all-zero rows stay zero), as float32."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)


def near_duplicate_pairs(
    features: np.ndarray, threshold: float, block_rows: int = BLOCK_ROWS
) -> list[tuple[int, int, float]]:
    """(i, j, cosine similarity) for every pair i < j at or above `threshold`, most similar
    first (ties by index). Compared a block of rows at a time, so memory stays bounded by
    `block_rows` x N whatever the number of images."""
    unit = unit_rows(features)
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(unit), block_rows):
        block = unit[start : start + block_rows]
        similarity = block @ unit[start:].T  # only j >= i: each pair once
        rows, columns = np.nonzero(similarity >= threshold)
        for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
            i, j = start + row, start + column
            if j > i:
                pairs.append((i, j, float(similarity[row, column])))
    return sorted(pairs, key=lambda pair: (-pair[2], pair[0], pair[1]))
