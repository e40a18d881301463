"""tf.distribute: `mirrored` on two logical CPU devices computes what `none` does, and a
two-worker cluster on this machine fine-tunes with only the chief writing.

The logical devices and the cluster must be set before TensorFlow starts, so each test runs
its work in processes of its own (tests/model/two_devices.py, or the finetune stage).
"""

import json
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from bench.sandbox import command_env, run_command
from tests.helpers import N_CLASSES, NO_VIEWS, ROOT, SIZE, tiny_classifier, tiny_params
from transfer.manifests.cache_meta import CacheMeta, write_cache_meta
from transfer.models.cut import unfreeze_top
from transfer.models.factories import BACKBONE_LAYER, EXTRACTOR_LAYER
from transfer.models.files import load_model, save_model
from transfer.params import FinetuneParams
from transfer.paths import SPLITS
from transfer.training.backbone import fit_on_images
from transfer.views import Views

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def compared(
    shards: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, np.ndarray]:
    """What tests/model/two_devices.py gives, every task in one process."""
    out = tmp_path_factory.mktemp("two_devices") / "results.npz"
    args = [sys.executable, "-m", "tests.model.two_devices", str(out), *map(str, shards)]
    result = run_command(args, ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(out))


def two_devices(task: str, compared: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The task's `none_*` and `mirrored_*` arrays."""
    results = {
        key.removeprefix(f"{task}:"): value
        for key, value in compared.items()
        if key.startswith(f"{task}:")
    }
    assert (results["none_replicas"], results["mirrored_replicas"]) == (1, 2)
    return results


def test_mirrored_features_equal_those_of_one_device(compared: dict[str, np.ndarray]) -> None:
    """Each batch split in two (the last, of 3 images, as 2 + 2 with one padded row) and
    gathered back in order, by Keras although the engine asks for LiteRT."""
    results = two_devices("features", compared)
    assert not results["mirrored_on_litert"]
    np.testing.assert_array_equal(results["mirrored_labels"], results["none_labels"])
    assert np.abs(results["none_features"]).mean() > 0.1  # features of order 1
    np.testing.assert_allclose(
        results["mirrored_features"], results["none_features"], rtol=1e-5, atol=1e-6
    )


def test_a_mirrored_head_trains_to_the_same_weights(compared: dict[str, np.ndarray]) -> None:
    """Under a strategy the head trains one step per graph call (Keras cannot run more
    there), without one a whole epoch per call: the same weights up to rounding (measured:
    1e-7), the last batch of 8 split 4 + 4."""
    results = two_devices("head", compared)
    for key in [k.removeprefix("none_") for k in results if k.startswith("none_weight")]:
        np.testing.assert_allclose(
            results[f"mirrored_{key}"], results[f"none_{key}"], rtol=1e-4, atol=1e-6
        )
    np.testing.assert_allclose(results["mirrored_loss"], results["none_loss"], rtol=1e-5)
    np.testing.assert_allclose(
        results["mirrored_predictions"], results["none_predictions"], rtol=0, atol=1e-5
    )


@pytest.mark.parametrize("task", ["images", "activations"])
def test_mirrored_fine_tuning_gives_the_same_model(
    task: str, compared: dict[str, np.ndarray]
) -> None:
    """Three SGD steps, each on the 24 images split 12 + 12, on images or on cached
    activations. SGD's update is proportional to the gradient, so the two runs differ only
    by rounding: measured, predictions by 5e-7 and weight updates by 7e-9 (the weights' own
    rounding), against updates of 1e-4 to 7e-3. Adam's first steps move every weight by about
    its learning rate whatever the gradient's size, so a gradient near zero that rounds
    differently moves its weight differently (2e-6 of 1e-3 after one step)."""
    results = two_devices(task, compared)
    updates = [k.removeprefix("none_") for k in results if k.startswith("none_update")]
    assert len(updates) > 2
    for key in updates:
        assert np.abs(results[f"none_{key}"]).max() > 1e-5  # every trained weight moved
        np.testing.assert_allclose(
            results[f"mirrored_{key}"], results[f"none_{key}"], rtol=1e-3, atol=1e-7
        )
    predictions = results["none_predictions"]
    assert predictions.max() - predictions.min() > 0.1  # not a uniform guess
    np.testing.assert_allclose(results["mirrored_predictions"], predictions, rtol=0, atol=1e-5)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def stage_directory(directory: Path, shards: list[Path], models: Path | None, **params) -> Path:
    """The inputs of a stage, as on one machine: the 24 images as every split's cache, the
    models if given, and the tiny params with the given values (a mapping updates its
    section)."""
    cache = directory / "data/cache"
    cache.mkdir(parents=True)
    for shard in shards:
        shutil.copy(shard, cache / shard.name)
    names = [shard.name for shard in shards]
    counts = dict.fromkeys(SPLITS, 24)
    write_cache_meta(
        cache, CacheMeta(("c0", "c1", "c2"), SIZE, 95, counts, dict.fromkeys(SPLITS, names))
    )
    if models is not None:
        shutil.copytree(models, directory / "models")
    values = tiny_params(Path("unused"))
    values["backbone"]["batch_size"] = 7  # the last batch, of 3 images, splits unevenly
    values["finetune"].update(epochs=1, warmup_epochs=0)
    for key, value in params.items():
        if isinstance(value, dict):
            values[key].update(value)
        else:
            values[key] = value
    (directory / "params.yaml").write_text(yaml.safe_dump(values))
    return directory


def files_under(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


def run_cluster(module: str, directories: list[Path], tmp_path: Path) -> list[str]:
    """Run `python -m <module>` in each directory as a worker of one cluster on this
    machine (TF_CONFIG); their outputs, once every one has succeeded. Each worker's
    temporary files go to tmp_path/tmp<index>."""
    ports = free_ports(len(directories))
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    try:
        for index, directory in enumerate(directories):
            config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            scratch = tmp_path / f"tmp{index}"
            scratch.mkdir()
            env = {**command_env(), "TF_CONFIG": json.dumps(config), "TMPDIR": str(scratch)}
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", module],
                    cwd=directory,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        outputs = [process.communicate(timeout=120)[0] for process in processes]
    finally:
        for process in processes:
            process.kill()  # one that waits for a worker that failed would wait for ever
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-4000:]
    assert all("distribute=multi_worker: 2 replicas" in output for output in outputs)
    assert "not the chief" in outputs[1] and "not the chief" not in outputs[0]
    assert not list((tmp_path / "tmp1").glob("transfer-worker-*"))  # deleted by worker 1
    return outputs


def test_two_workers_extract_the_features_one_process_does(
    shards: list[Path], tmp_path: Path
) -> None:
    """Each batch split between two workers and gathered back in order on both: the chief
    writes the features, labels, paths and extractor that one process writes."""
    keras_engine = {"engine": "keras"}  # as the workers run it
    single = stage_directory(
        tmp_path / "single", shards, None, distribute="none", backbone=keras_engine
    )
    result = run_command([sys.executable, "-m", "stages.extract"], single)
    assert result.returncode == 0, result.stderr[-3000:]
    workers = [
        stage_directory(tmp_path / f"worker{index}", shards, None, distribute="multi_worker")
        for index in range(2)
    ]
    inputs = files_under(workers[1])
    run_cluster("stages.extract", workers, tmp_path)
    chief = workers[0] / "data/features"
    assert sorted(files_under(chief)) == sorted(files_under(single / "data/features"))
    for split in SPLITS:
        expected, features = (
            np.load(d / f"{split}.npy") for d in (single / "data/features", chief)
        )
        assert np.abs(expected).max() > 0
        # Relative only: this random backbone's features are about 1e-12.
        np.testing.assert_allclose(features, expected, rtol=1e-5, atol=0)
        for name in (f"{split}_labels.npy", f"{split}_paths.json"):
            assert (chief / name).read_bytes() == (single / "data/features" / name).read_bytes()
    extractor = "models/feature_extractor.keras"
    assert (workers[0] / extractor).read_bytes() == (single / extractor).read_bytes()
    assert files_under(workers[1]) == inputs  # the other worker kept nothing


@pytest.mark.parametrize("cache_activations", [True, False], ids=["activations", "images"])
def test_two_workers_fine_tune_and_only_the_chief_writes(
    cache_activations: bool, shards: list[Path], tmp_path: Path
) -> None:
    """Two processes on this machine, each told its place in the cluster by TF_CONFIG, run
    `python -m stages.finetune` in a copy of its inputs, as on two machines: they split
    every batch (of the activation cache, of training, of the test predictions) between
    them, and only the chief (worker 0) keeps the model, the probabilities and the DVCLive
    files. On images each worker reads its own TFRecord shards."""
    extractor, head, _ = tiny_classifier()
    models = tmp_path / "models"
    save_model(extractor, models / "feature_extractor.keras")
    save_model(head, models / "head.keras")
    params = {"unfreeze": 10, "finetune": {"cache_activations": cache_activations}}
    workers = [
        stage_directory(
            tmp_path / f"worker{i}", shards, models, distribute="multi_worker", **params
        )
        for i in range(2)
    ]
    inputs = files_under(workers[1])
    run_cluster("stages.finetune", workers, tmp_path)
    written = files_under(workers[0]) - inputs
    assert {name for name in written if not name.startswith("reports/finetune/plots/")} == {
        "models/finetuned/model.keras",
        "models/finetuned/test_probabilities.npy",
        "models/finetuned/test_mirrored_probabilities.npy",
        "reports/finetune/metrics.json",
    }
    assert "reports/finetune/plots/metrics/train/loss.tsv" in written
    probabilities = np.load(workers[0] / "models/finetuned/test_probabilities.npy")
    assert probabilities.shape == (24, N_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    trained = load_model(workers[0] / "models/finetuned/model.keras")
    top = trained.get_layer(EXTRACTOR_LAYER).get_layer(BACKBONE_LAYER).layers[-10:]
    initial = extractor.get_layer(BACKBONE_LAYER).layers[-10:]
    assert any(
        not np.array_equal(a, b)
        for after, before in zip(top, initial, strict=True)
        for a, b in zip(after.get_weights(), before.get_weights(), strict=True)
    )
    assert files_under(workers[1]) == inputs  # the other worker kept nothing


def test_mixed_precision_trains_in_float16_and_leaves_a_float32_model(
    shards: list[Path], tmp_path: Path
) -> None:
    """mixed_float16 runs on a CPU too, slowly: while it trains, the layers compute in
    float16 under a loss scale and the probabilities in float32; afterwards the model and
    its saved file are float32 again."""
    extractor, _, classifier = tiny_classifier()
    unfreeze_top(extractor.get_layer(BACKBONE_LAYER), 10)
    images = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    dtypes = {}

    class RecordDtypes(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            dtypes["optimizer"] = type(self.model.optimizer).__name__
            dtypes["features"] = keras.backend.standardize_dtype(extractor(images).dtype)
            dtypes["probabilities"] = keras.backend.standardize_dtype(classifier(images).dtype)

    params = FinetuneParams(epochs=1, warmup_epochs=0, batch_size=8)
    train_only = {"train": (shards, 24)}
    fit_on_images(
        classifier,
        train_only,
        N_CLASSES,
        params=params,
        views=Views(NO_VIEWS, 0),
        callbacks=[RecordDtypes()],
        precision="mixed_float16",
    )
    assert dtypes == {
        "optimizer": "LossScaleOptimizer",
        "features": "float16",
        "probabilities": "float32",
    }
    assert keras.backend.standardize_dtype(extractor(images).dtype) == "float32"
    assert {layer.dtype_policy.name for layer in classifier.layers} == {"float32"}
    save_model(classifier, tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        assert "mixed_float16" not in archive.read("config.json").decode()
