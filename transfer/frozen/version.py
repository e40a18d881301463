"""The memo version of a frozen forward pass (extract's features, the fine-tune's activations):
the model's weights and settings, the engine, the libraries, and the code that makes its rows."""

import hashlib
from importlib import metadata

import keras
import numpy as np
import tensorflow as tf

from transfer.memo.code_version import code_version
from transfer.memo.store import key

# The modules that make a frozen forward pass's rows: extract's and the fine-tune's own
# (which transform goes with which row key), the rows' reading and order (frozen.rows, tfdata),
# the augmented views, the engine, and the models with their cut. Everything they import is
# found from them (code_version); tests/unit/test_memo.py checks that every module the
# stages load is either found or named there as shaping no row.
FORWARD_ROOTS = (
    "transfer.extraction",
    "transfer.training.activation_cache",
    "transfer.frozen.rows",
    "transfer.views",
    "transfer.litert",
    "transfer.models.factories",
    "transfer.models.cut",
)
# How params.yaml is read. The values that shape rows are in the key themselves (the
# backbone's name, its weights' digest, the image size, the views' settings and seed), so a
# new param, or a change to another param's check, computes no feature again.
KEY_LEAVES_OUT = ("transfer.params",)


def forward_code_version() -> str:
    """The code's part of a forward pass's key: FORWARD_ROOTS' modules, but KEY_LEAVES_OUT."""
    return code_version(*FORWARD_ROOTS, leaving_out=KEY_LEAVES_OUT)


def weights_digest(model: keras.Model) -> str:
    """The SHA-256 of a model's weights, in order."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()


def forward_version(model: keras.Model, engine: str, *settings: object) -> str:
    """What shapes a frozen forward pass's outputs besides its input image: the model's
    weights, the `settings` that say what it is (its architecture, its cut), the engine
    that runs it (litert.engine_for), and the libraries and code (FORWARD_ROOTS, but
    KEY_LEAVES_OUT) that decode, augment and run."""
    libraries = (tf.__version__, keras.__version__, metadata.version("ai-edge-litert"))
    return key(weights_digest(model), settings, engine, libraries, forward_code_version())
