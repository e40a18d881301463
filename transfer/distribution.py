"""How a stage runs its models, from params: the tf.distribute strategy (`distribute`) that
builds, trains and runs them, the precision training computes in (`precision`), the seed, and
whether the memo may be used; stage_context sets them up."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import keras
import tensorflow as tf

from transfer.memo.store import NO_MEMO, Memo, open_memo
from transfer.models.factories import PROBABILITIES_LAYER
from transfer.params import Params

log = logging.getLogger(__name__)


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """TensorFlow's strategy, with a `reduce` that takes what Keras 3's `fit` gives it.

    Keras 3 reduces a whole batch, a nest of tensors, to build the model, and per-batch
    scalars "along axis 0"; TensorFlow's multi-worker strategy reduces one tensor at a time
    and only along an axis it has, so `fit` fails under it (keras-team/keras#20585,
    tensorflow/tensorflow#72388). This reduces each tensor of a nest, a scalar across the
    replicas only.
    """

    def reduce(self, reduce_op: Any, value: Any, axis: int | None = None) -> Any:
        def reduce_one(tensor: Any) -> Any:
            rank = self.experimental_local_results(tensor)[0].shape.rank
            return super(MultiWorkerMirroredStrategy, self).reduce(
                reduce_op, tensor, None if rank == 0 else axis
            )

        return tf.nest.map_structure(reduce_one, value)


def strategy_for(distribute: str) -> tf.distribute.Strategy:
    """The strategy `distribute` names. Call it before anything else runs TensorFlow:
    a MultiWorkerMirroredStrategy must exist before TensorFlow starts.

    none: TensorFlow's default strategy (one device, nothing distributed); mirrored: a
    MirroredStrategy over every GPU, or over every CPU device when there is no GPU; auto:
    mirrored when there are two GPUs or more, else none; multi_worker: a
    MultiWorkerMirroredStrategy over the cluster that TF_CONFIG describes.
    """
    if distribute == "multi_worker":
        strategy = MultiWorkerMirroredStrategy()  # reads TF_CONFIG
    elif distribute == "mirrored" or (
        distribute == "auto" and len(tf.config.list_physical_devices("GPU")) >= 2
    ):
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        strategy = tf.distribute.MirroredStrategy([device.name for device in devices])
    else:
        return tf.distribute.get_strategy()
    log.info("distribute=%s: %d replicas", distribute, strategy.num_replicas_in_sync)
    return strategy


def precision_for(precision: str) -> str:
    """The dtype policy that training computes in: `auto` is mixed_float16 on a GPU, else
    float32. mixed_float16 without a GPU runs, but more slowly than float32."""
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    policy = ("mixed_float16" if has_gpu else "float32") if precision == "auto" else precision
    if policy == "mixed_float16":
        log.info("precision=%s: training computes in mixed_float16", precision)
        if not has_gpu:
            log.warning("mixed_float16 without a GPU: float16 is slower than float32 here")
    return policy


def _layers(model: keras.Layer) -> Iterator[keras.Layer]:
    """The model itself and every layer in it, nested models' layers included."""
    yield model
    for layer in getattr(model, "layers", ()):
        yield from _layers(layer)


@contextmanager
def computing_in(policy: str, model: keras.Model) -> Iterator[None]:
    """Inside the block, `model` computes in the dtype policy `policy` (its variables stay
    float32); after it, in float32 again, so that what is saved, converted or predicted
    afterwards is a float32 model whatever the machine trained it.

    The head's probabilities stay float32 throughout, as the loss needs. Compile inside the
    block: under mixed_float16 Keras then scales the loss (a LossScaleOptimizer).
    """
    if policy == "float32":
        yield
        return
    switched = [
        layer
        for layer in _layers(model)
        if layer.name != PROBABILITIES_LAYER and not isinstance(layer, keras.layers.InputLayer)
    ]
    for layer in switched:
        layer.dtype_policy = policy
    try:
        yield
    finally:
        for layer in switched:
            layer.dtype_policy = "float32"


@dataclass(frozen=True)
class StageContext:
    """How a stage runs its models: the strategy, the dtype policy training computes in, and
    the memo (NO_MEMO where it may not be used)."""

    strategy: tf.distribute.Strategy
    precision: str
    memo: Memo


def stage_context(params: Params) -> StageContext:
    """Set up a stage that runs models: the strategy first (before TensorFlow starts), then
    the seed (the initial weights, shuffling, dropout)."""
    strategy = strategy_for(params.distribute)
    keras.utils.set_random_seed(params.seed)
    # The workers of a cluster must make the same forward calls: no memo there.
    memo = NO_MEMO if params.distribute == "multi_worker" else open_memo()
    return StageContext(strategy, precision_for(params.precision), memo)
