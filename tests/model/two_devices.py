"""One comparison of `distribute: none` with `mirrored` on two logical CPU devices, run in a
process of its own: TensorFlow has to be given the devices before it starts.

    python -m tests.model.two_devices OUT.npz SHARD...

Runs each task (features, head, images, activations) once per strategy, in the same process
(TensorFlow starts once), each from its own seed, and saves what each run gave into OUT.npz
as `<task>:<strategy>_<name>`.
"""

import sys
from pathlib import Path

import tensorflow as tf

CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402  (after the devices)
import numpy as np  # noqa: E402

from tests.helpers import N_CLASSES, SIZE, forward_rows  # noqa: E402
from transfer.distribution import strategy_for  # noqa: E402
from transfer.inference import inference_call, run_on_records  # noqa: E402
from transfer.litert import LiteRTModel, frozen_forward  # noqa: E402
from transfer.models.cut import unfreeze_top  # noqa: E402
from transfer.models.factories import (  # noqa: E402
    BACKBONE_LAYER,
    build_classifier,
    build_feature_extractor,
    build_head,
)
from transfer.params import AugmentParams, FinetuneParams, HeadParams  # noqa: E402
from transfer.tfdata import read_record_index  # noqa: E402
from transfer.training.backbone import fit_on_activations, fit_on_images  # noqa: E402
from transfer.training.callbacks import training_callbacks  # noqa: E402
from transfer.training.head import feature_batches, train_head  # noqa: E402
from transfer.views import Views  # noqa: E402

COUNT = 24  # images in the shards (tests/model/conftest.py)
# No dropout: each replica draws its own masks, so the runs could not agree. Under a strategy
# Keras starts one extra pass over the data before training (to build the model), so a
# shuffled dataset's first epoch there is the second one of a run without: the head trains
# on unshuffled batches, the fine-tuning on one batch of all the images per epoch.
HEAD = HeadParams(hidden=(8,), dropout=0.0, epochs=4, batch_size=32, patience=1)
NO_VIEWS = AugmentParams(views=0)
FINETUNE = FinetuneParams(epochs=3, batch_size=COUNT, learning_rate=0.001, optimizer="sgd")


def random_extractor() -> keras.Model:
    """A random MobileNetV2 whose activations keep their scale. Its default initialisation
    shrinks them block after block (features of about 1e-12), which would leave nothing to
    compare but the head's bias; a smaller moving variance in each BatchNormalization (which
    stays in inference mode) gives features of order 1, below ReLU6's cap."""
    extractor = build_feature_extractor("MobileNetV2", SIZE, None)
    for layer in extractor.get_layer(BACKBONE_LAYER).layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(np.full(layer.moving_variance.shape, 0.07, np.float32))
    return extractor


def features(strategy: tf.distribute.Strategy, shards: list[Path], out: Path) -> dict:
    """Batches of 7: the last one (3 images) does not split evenly. Keras runs the backbone
    under mirrored although the engine asks for LiteRT."""
    keras.utils.set_random_seed(1)
    with strategy.scope():
        extractor = random_extractor()
    engine = "keras" if strategy.num_replicas_in_sync == 1 else "litert"
    forward = frozen_forward(extractor, engine, strategy)
    return {
        "features": forward_rows(forward, shards, 1280, batch=7),
        "labels": read_record_index(shards).labels,
        "on_litert": isinstance(forward, LiteRTModel),
    }


def head(strategy: tf.distribute.Strategy, shards: list[Path], out: Path) -> dict:
    """A whole epoch per graph call (steps_per_execution), as train_head runs."""
    random = np.random.default_rng(1)
    centres = random.normal(0, 1, (N_CLASSES, 16))
    labels = random.integers(0, N_CLASSES, 250)
    rows = (centres[labels] + random.normal(0, 0.5, (250, 16))).astype(np.float32)
    train = feature_batches(rows[:200], labels[:200], N_CLASSES, HEAD.batch_size)  # last batch: 8
    val = feature_batches(rows[200:], labels[200:], N_CLASSES, HEAD.batch_size)
    callbacks = training_callbacks(HEAD.patience, None, True, reduce_on_plateau=True)
    with strategy.scope():
        model = train_head(
            train,
            val,
            labels[:200],
            width=16,
            n_classes=N_CLASSES,
            params=HEAD,
            seed=0,
            callbacks=callbacks,
        )
    return {
        "predictions": model.predict(rows[200:], verbose=0),
        "loss": np.array(model.history.history["loss"]),
        **{f"weight_{i}": np.array(w) for i, w in enumerate(model.weights)},
    }


def finetune(strategy: tf.distribute.Strategy, shards: list[Path], on_images: bool) -> dict:
    """The top 30 backbone layers and a head without dropout, 3 epochs on the 24 images."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        extractor = random_extractor()
        head = build_head(extractor.output_shape[-1], N_CLASSES, HeadParams(dropout=0.0))
        classifier = build_classifier(extractor, head)
        backbone = extractor.get_layer(BACKBONE_LAYER)
        top = unfreeze_top(backbone, 30)
        before = [np.array(w) for w in classifier.trainable_weights]
        callbacks = training_callbacks(FINETUNE.patience, None, False, reduce_on_plateau=False)
        keras.utils.set_random_seed(0)
        if on_images:
            fit_on_images(
                classifier,
                {"train": (shards, COUNT)},
                N_CLASSES,
                params=FINETUNE,
                views=Views(NO_VIEWS, 0),
                callbacks=callbacks,
            )
        else:
            train_only = {"train": (shards, COUNT)}
            fit_on_activations(
                extractor,
                head,
                train_only,
                N_CLASSES,
                top=top,
                params=FINETUNE,
                views=Views(NO_VIEWS, 0),
                callbacks=callbacks,
            )
    after = [np.array(w) for w in classifier.trainable_weights]
    return {
        "predictions": run_on_records(
            inference_call(classifier, strategy), N_CLASSES, shards, COUNT, 7
        )[0],
        **{f"update_{i}": a - b for i, (a, b) in enumerate(zip(after, before, strict=True))},
    }


TASKS = {
    "features": features,
    "head": head,
    "images": lambda strategy, shards, out: finetune(strategy, shards, True),
    "activations": lambda strategy, shards, out: finetune(strategy, shards, False),
}


def main(out: Path, shards: list[Path]) -> None:
    results = {}
    # One strategy of each for every task: a second MirroredStrategy in a process fails its
    # collective ops ("InternalError ... could be from a previous operation").
    strategies = {name: strategy_for(name) for name in ("none", "mirrored")}
    for task, run in TASKS.items():
        for name, strategy in strategies.items():
            results[f"{task}:{name}_replicas"] = strategy.num_replicas_in_sync
            outputs = run(strategy, shards, out.parent / f"{task}_{name}")
            results.update({f"{task}:{name}_{key}": value for key, value in outputs.items()})
    np.savez(out, **results)


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
