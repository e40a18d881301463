"""Near-duplicate images: pairs whose feature vectors point the same way."""

import numpy as np

BLOCK_ROWS = 512  # rows compared with all others at once
MAX_PARTNERS = 20  # near-duplicates kept per image, the most similar: bounds the pairs too


def unit_rows(features: np.ndarray) -> np.ndarray:
    """The rows scaled to length 1 (all-zero rows stay zero), as float32."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)


def near_duplicate_pairs(
    features: np.ndarray,
    threshold: float,
    block_rows: int = BLOCK_ROWS,
    max_partners: int = MAX_PARTNERS,
) -> list[tuple[int, int, float]]:
    """(i, j, cosine similarity) of the pairs i < j at or above `threshold`, most similar
    first (ties by index); of each image's later partners, the `max_partners` most similar.

    Compared a block of rows at a time, so the similarities in memory are `block_rows` x N
    and the pairs at most `max_partners` x N, whatever the threshold.
    """
    unit = unit_rows(features)
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, len(unit), block_rows):
        block = unit[start : start + block_rows]
        similarity = block @ unit[start:].T  # column c is image start + c: pairs with j >= i
        for row, similarities in enumerate(similarity):
            similarities[: row + 1] = -np.inf  # j > i only: each pair once
            columns = np.flatnonzero(similarities >= threshold)
            if len(columns) > max_partners:
                order = np.argsort(-similarities[columns], kind="stable")
                columns = np.sort(columns[order[:max_partners]])
            i = start + row
            pairs += [(i, start + int(c), float(similarities[c])) for c in columns]
    return sorted(pairs, key=lambda pair: (-pair[2], pair[0], pair[1]))
