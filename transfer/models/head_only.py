"""What `finetune` leaves in models/finetuned, and so what the classifier is: the one place
that says what `unfreeze: 0` means (no TensorFlow here).

With `unfreeze: 0` (head only) nothing is trained: the classifier is the frozen extractor
and the head as `train_head` left them, and models/finetuned holds the head's test
probabilities, passed on as they are. With `unfreeze` above 0 it holds the fine-tuned
classifier's test probabilities and the classifier itself.
"""

import shutil
from pathlib import Path

from transfer.paths import (
    FINETUNED_MODEL,
    HEAD_MIRRORED_PROBABILITIES,
    HEAD_TEST_PROBABILITIES,
    MIRRORED_PROBABILITIES,
    TEST_PROBABILITIES,
)


def trains_backbone(unfreeze: int) -> bool:
    """Whether `unfreeze` asks for backbone layers to be trained (0: the head only)."""
    return unfreeze > 0


def pass_on_the_head(out_dir: Path) -> None:
    """Fill models/finetuned for `unfreeze: 0`: the head's test probabilities, clean and
    mirrored, as train_head wrote them."""
    shutil.copyfile(HEAD_TEST_PROBABILITIES, out_dir / TEST_PROBABILITIES)
    shutil.copyfile(HEAD_MIRRORED_PROBABILITIES, out_dir / MIRRORED_PROBABILITIES)


def classifier_files(finetuned_dir: Path, extractor_file: Path, head_file: Path) -> list[Path]:
    """The .keras files the classifier is made of: the fine-tuned classifier when `finetune`
    wrote one, else (unfreeze: 0) the extractor and the head."""
    model = finetuned_dir / FINETUNED_MODEL
    return [model] if model.exists() else [extractor_file, head_file]
