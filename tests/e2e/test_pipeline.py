"""The real dvc commands on a synthetic dataset in a temporary git repo."""

import csv
import json
import re
import shutil
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from PIL import Image

from bench.sandbox import commit, make_pipeline_repo, run_command
from tests.helpers import (
    dvc,
    make_image_folder,
    predict_with_plain_keras,
    tiny_params,
    write_image,
)
from transfer.contact_sheets import CAPTION, TILE, open_tile
from transfer.evaluation.grid import grid_order
from transfer.features import load_features
from transfer.heatmaps.gradcam import explain_photos, load_gradcam
from transfer.heatmaps.overlay import overlay
from transfer.litert import LiteRTModel
from transfer.manifests.cache_meta import read_cache_meta
from transfer.models.factories import BACKBONE_LAYER, EXTRACTOR_LAYER
from transfer.models.head_only import classifier_files
from transfer.paths import EXTRACTOR_FILE, FINETUNED_DIR, HEAD_FILE
from transfer.tfdata import read_images

pytestmark = pytest.mark.e2e
ALL_STAGES = {
    "code_versions", "download", "split", "cache", "extract", "audit", "train_head",
    "finetune", "evaluate", "export",
}  # fmt: skip
EXPORT_FILES = (
    "models/model.keras",
    "models/export/labels.txt",
    "models/export/model_float.tflite",
    "models/export/model_float16.tflite",
    "models/export/model_dynamic_range.tflite",
    "models/export/model_int8.tflite",
    "models/export/saved_model/saved_model.pb",
    "reports/export/metrics.json",
)
UNFREEZE = 20


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("e2e")
    photos = make_image_folder(base / "photos")
    params = tiny_params(photos)
    params["evaluate"]["heat_maps"] = True  # test_predictions_picture_tints_the_misclassified...
    return make_pipeline_repo(base / "repo", params)


def test_repro_builds_every_output_then_runs_nothing(repo: Path) -> None:
    first = dvc(repo, "repro")
    assert stages_run(first.stdout) == ALL_STAGES
    for output in (
        "data/raw/cat",
        "data/raw.csv",
        "data/split/train.csv",
        "data/cache/meta.json",
        "data/features/train.npy",
        "data/features/train_views.npy",
        "data/features/test_mirrored.npy",
        "models/head.keras",
        "models/finetuned/test_probabilities.npy",
        "models/finetuned/test_mirrored_probabilities.npy",
        *EXPORT_FILES,
        "reports/metrics.json",
        "reports/confusion.csv",
        "reports/train_head/metrics.json",
    ):
        assert (repo / output).exists(), output
    commit(repo, "head-only run")
    second = dvc(repo, "repro")
    assert stages_run(second.stdout) == set()
    views = yaml.safe_load((repo / "params.yaml").read_text())["augment"]["views"]
    clean, _ = load_features(repo / "data/features", "train")
    assert views > 0
    assert np.load(repo / "data/features/train_views.npy").shape == (views * len(clean), 1280)


def test_a_head_only_classifier_predicts_what_its_head_does_on_the_features(
    repo: Path, tmp_path: Path
) -> None:
    """unfreeze=0: finetune passes the head's probabilities on untouched, and the classifier
    that export assembles predicts the same from the images, also in plain Keras."""
    assert not (repo / "models/finetuned/model.keras").exists()
    passed_on = (repo / "models/finetuned/test_probabilities.npy").read_bytes()
    assert passed_on == (repo / "models/head_test_probabilities.npy").read_bytes()
    features, _ = load_features(repo / "data/features", "test")
    on_features = predict_with_plain_keras(repo / "models/head.keras", features, tmp_path)
    probabilities = np.load(repo / "models/finetuned/test_probabilities.npy")
    np.testing.assert_allclose(probabilities, on_features, rtol=1e-5, atol=1e-7)
    meta = read_cache_meta(repo / "data/cache")
    images, _, _ = read_images(meta.split_files(repo / "data/cache", "test"), 8)
    on_images = predict_with_plain_keras(repo / "models/model.keras", images, tmp_path)
    np.testing.assert_allclose(on_images, probabilities, rtol=0, atol=1e-4)  # LiteRT features


def test_the_export_writes_every_file_and_its_float_model_agrees_with_keras(
    repo: Path,
) -> None:
    for name in EXPORT_FILES:
        assert (repo / name).stat().st_size > 0, name
    assert (repo / "models/export/labels.txt").read_text() == "cat\ndog\nfox\n"
    metrics = json.loads((repo / "reports/export/metrics.json").read_text())
    assert metrics["tflite_float"]["agreement"] == 1.0
    test_count = read_cache_meta(repo / "data/cache").counts["test"]
    assert metrics["saved_model"]["agreement"] == metrics["saved_model_bytes"]["agreement"] == 1.0
    assert set(metrics) == {
        "saved_model", "saved_model_bytes", "tflite_float", "tflite_float16",
        "tflite_dynamic_range", "tflite_int8",
    }  # fmt: skip
    for name, figures in metrics.items():
        assert figures["images"] == test_count, name
        assert set(figures) == {
            "file", "accuracy", "agreement", "max_probability_difference", "images", "bytes",
            "latency_ms_1_thread", "latency_ms_all_threads", "threads",
        }  # fmt: skip
        if figures["file"].endswith(".tflite"):
            assert figures["bytes"] == (repo / "models/export" / figures["file"]).stat().st_size
        assert 0 < figures["latency_ms_all_threads"] < 1000
    assert metrics["tflite_int8"]["bytes"] < metrics["tflite_float"]["bytes"] / 2
    assert metrics["tflite_float16"]["bytes"] < metrics["tflite_float"]["bytes"] * 0.55
    keras_probabilities = np.load(repo / "models/finetuned/test_probabilities.npy")
    meta = read_cache_meta(repo / "data/cache")
    images, _, _ = read_images(meta.split_files(repo / "data/cache", "test"), 8)
    on_litert = LiteRTModel((repo / "models/export/model_float.tflite").read_bytes())(images)[0]
    np.testing.assert_allclose(on_litert, keras_probabilities, rtol=0, atol=1e-4)


def test_an_evaluate_experiment_leaves_the_export_for_a_later_repro(repo: Path) -> None:
    result = dvc(repo, "exp", "run", "evaluate", "-S", "head.learning_rate=0.01")
    assert stages_run(result.stdout) == {"train_head", "finetune", "evaluate"}
    assert "export:" in dvc(repo, "status").stdout
    result = dvc(repo, "repro")
    assert stages_run(result.stdout) == {"export"}
    commit(repo, "head learning rate 0.01")


def test_an_export_param_reruns_only_the_export(repo: Path) -> None:
    """With export.onnx, this process checks the SavedModel, not the second one."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["export"].update(calibration_images=3, check_images=2, onnx=True)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stages_run(dvc(repo, "repro").stdout) == {"export"}
    metrics = json.loads((repo / "reports/export/metrics.json").read_text())
    assert {figures["images"] for figures in metrics.values()} == {2}
    for name in ("saved_model", "saved_model_bytes", "onnx"):
        assert metrics[name]["agreement"] == 1.0, name
    commit(repo, "export calibrated on 3 images, checked on 2, and ONNX")


def test_an_audit_param_reruns_only_the_audit(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["audit"]["folds"] = 3
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = dvc(repo, "repro")
    # duplicates.csv, which evaluate reads, comes out the same: evaluate does not rerun.
    assert stages_run(result.stdout) == {"audit"}
    metrics = json.loads((repo / "reports/audit/metrics.json").read_text())
    assert set(metrics) == {
        "duplicate_pairs", "cross_split_duplicate_pairs", "suspected_label_errors",
        "label_issues_flagged", "outliers", "unusable_photos", "out_of_fold_accuracy",
    }  # fmt: skip
    commit(repo, "audit folds 3")


def test_exp_run_unfreeze_trains_exactly_the_top_layers(repo: Path, tmp_path: Path) -> None:
    head_only = tmp_path / "head_only.keras"
    shutil.copy(repo / "models/model.keras", head_only)
    result = dvc(repo, "exp", "run", "-S", f"unfreeze={UNFREEZE}")
    assert stages_run(result.stdout) == {"finetune", "evaluate", "export"}
    before = keras.models.load_model(head_only).get_layer(EXTRACTOR_LAYER)
    after = keras.models.load_model(repo / "models/model.keras").get_layer(EXTRACTOR_LAYER)
    layers_before = before.get_layer(BACKBONE_LAYER).layers
    layers_after = after.get_layer(BACKBONE_LAYER).layers
    cut = len(layers_before) - UNFREEZE
    for index, (old, new) in enumerate(zip(layers_before, layers_after, strict=True)):
        same = all(
            np.array_equal(a, b) for a, b in zip(old.get_weights(), new.get_weights(), strict=True)
        )
        trained = (
            index >= cut and old.weights and not isinstance(old, keras.layers.BatchNormalization)
        )
        assert same != bool(trained), f"layer {index} {old.name}: unchanged={same}"

    diff = dvc(repo, "metrics", "diff", "HEAD", "--all")
    assert re.search(r"reports/metrics\.json\s+accuracy\s", diff.stdout), diff.stdout


def test_the_models_open_with_plain_keras_and_predict_like_the_pipeline(
    repo: Path, tmp_path: Path
) -> None:
    """In a process that cannot import this project, as on a machine without it."""
    meta = read_cache_meta(repo / "data/cache")
    images, labels, paths = read_images(meta.split_files(repo / "data/cache", "test"), 8)
    clean = predict_with_plain_keras(repo / "models/model.keras", images, tmp_path)
    mirrored = predict_with_plain_keras(repo / "models/model.keras", images[:, :, ::-1], tmp_path)
    # evaluate.tta (the default): the mean over each image and its mirror image
    assert yaml.safe_load((repo / "params.yaml").read_text())["evaluate"]["tta"]
    probabilities = (clean + mirrored) / 2
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    rows = read_csv(repo / "reports/predictions.csv")  # the fine-tuned model's, from evaluate
    assert [row["path"] for row in rows] == paths
    # The pipeline ran the model on LiteRT (backbone.engine), to about 1e-5 of Keras: only
    # a clear winner must be the same.
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 1e-3
    predicted = [meta.classes[i] for i in probabilities.argmax(1)]
    assert [r["predicted"] for r, c in zip(rows, clear, strict=True) if c] == [
        p for p, c in zip(predicted, clear, strict=True) if c
    ]
    confidence = [float(row["confidence"]) for row in rows]
    np.testing.assert_allclose(probabilities.max(axis=1), confidence, atol=1e-4)
    features = predict_with_plain_keras(repo / "models/feature_extractor.keras", images, tmp_path)
    cached, cached_labels = load_features(repo / "data/features", "test")
    np.testing.assert_array_equal(cached_labels, labels)
    np.testing.assert_allclose(features, cached, rtol=0, atol=1e-4)  # cached by LiteRT


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_metrics_match_a_hand_computation_on_the_predictions(repo: Path) -> None:
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    rows = read_csv(repo / "reports/predictions.csv")
    confusion = read_csv(repo / "reports/confusion.csv")
    assert len(confusion) == len(rows) == metrics["test_images"] > 0
    assert [(r["actual"], r["predicted"]) for r in confusion] == [
        (r["true"], r["predicted"]) for r in rows
    ]
    correct = [r["true"] == r["predicted"] for r in rows]
    assert metrics["accuracy"] == pytest.approx(sum(correct) / len(rows))
    f1s, supports = [], []
    for name in ("cat", "dog", "fox"):
        hits = sum(r["true"] == name and r["predicted"] == name for r in rows)
        predicted = sum(r["predicted"] == name for r in rows)
        support = sum(r["true"] == name for r in rows)
        precision = hits / predicted if predicted else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
        assert metrics["per_class"][name] == pytest.approx(
            {"precision": precision, "recall": recall, "f1": f1, "support": support}
        )
        f1s.append(f1)
        supports.append(support)
    assert metrics["macro_f1"] == pytest.approx(sum(f1s) / 3)
    assert metrics["weighted_f1"] == pytest.approx(np.average(f1s, weights=supports))
    assert metrics["top_3_accuracy"] == 1.0  # k is capped at the 3 classes
    assert metrics["loss"] > 0
    # Random features at 32 px make every image a near-duplicate of every other, so the test
    # images that leak from train are counted, and the accuracy without them is computed.
    leaked = metrics["test_images_with_train_duplicates"]
    assert 0 < leaked <= len(rows)
    assert (metrics["accuracy_without_train_duplicates"] is None) == (leaked == len(rows))


def test_predictions_picture_tints_the_misclassified_with_their_heat_maps(repo: Path) -> None:
    rows = read_csv(repo / "reports/predictions.csv")
    labels, predicted = (np.array([row[key] for row in rows]) for key in ("true", "predicted"))
    classes = read_cache_meta(repo / "data/cache").classes
    gradcam = load_gradcam(
        classifier_files(repo / FINETUNED_DIR, repo / EXTRACTOR_FILE, repo / HEAD_FILE)
    )
    with Image.open(repo / "reports/predictions.png") as picture:
        assert picture.size == (3 * TILE, 2 * (TILE + CAPTION))  # 6 images in a 3 x 2 grid
        for slot, index in enumerate(grid_order(labels, predicted, 6)):
            file = repo / "data/raw" / rows[index]["path"]
            tile = open_tile(file.parent, file.name)
            if labels[index] != predicted[index]:  # its map for the class predicted
                wanted = [classes.index(predicted[index])]
                tile = overlay(tile, explain_photos(gradcam, [file], wanted)[0])
            left, top = (slot % 3) * TILE + 2, (slot // 3) * (TILE + CAPTION) + 2
            drawn = np.asarray(picture.crop((left, top, left + TILE - 4, top + TILE - 4)), float)
            expected = np.asarray(tile.resize((TILE - 4, TILE - 4)), float)
            assert np.abs(drawn - expected).mean() < 1, rows[index]


def test_plots_show_renders_confusion_and_curves(repo: Path, tmp_path: Path) -> None:
    dvc(repo, "plots", "show", "-o", str(tmp_path / "plots"))
    html = (tmp_path / "plots" / "index.html").read_text()
    assert "confusion" in html and "confusion_normalized" in html
    assert "reports/train_head/plots/metrics" in html


def test_predict_reports_bad_files_and_fails_only_when_nothing_worked(
    repo: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "new"
    write_image(folder / "good.jpg", (200, 40, 40), 5, size=60)
    (folder / "bad.jpg").write_bytes(b"not an image")
    predict = [sys.executable, "-m", "transfer.predict"]
    result = run_command([*predict, str(folder)], repo)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        rf"{folder}/good.jpg: (\w+ [01]\.\d{{3}}, ){{2}}\w+ [01]\.\d{{3}}\n", result.stdout
    )
    assert f"{folder}/bad.jpg: error: not an image (unrecognised data)" in result.stderr
    # The console script that pyproject.toml declares does the same.
    classify = Path(sys.executable).parent / "classify"
    assert run_command([str(classify), str(folder)], repo).stdout == result.stdout
    # The exported TFLite model (LiteRT, the default) and the Keras model agree.
    keras_json = [*predict, "--json", "--model", "models/model.keras", str(folder / "good.jpg")]
    with_keras = run_command(keras_json, repo)
    assert with_keras.returncode == 0, with_keras.stderr
    ranked = re.findall(r"(\w+) ([01]\.\d{3})", result.stdout)
    (as_json,) = json.loads(with_keras.stdout)
    assert len(as_json["predictions"]) == 3
    assert [name for name, _ in ranked] == [p["class"] for p in as_json["predictions"]]
    for (_, litert_p), keras_p in zip(ranked, as_json["predictions"], strict=True):
        assert abs(float(litert_p) - keras_p["probability"]) <= 0.002
    only_bad = run_command([*predict, str(folder / "bad.jpg")], repo)
    assert only_bad.returncode == 1
    assert only_bad.stderr.endswith("error: no image could be classified\n")


def test_going_back_to_params_already_run_runs_no_stage(repo: Path) -> None:
    """After the fine-tune, unfreeze=0 again: every stage comes from DVC's run cache, and the
    workspace holds the head-only run's predictions again."""
    result = dvc(repo, "exp", "run", "-S", "unfreeze=0")
    assert stages_run(result.stdout) == set(), result.stdout
    restored = set(re.findall(r"Stage '([^']+)' is cached - skipping run", result.stdout))
    assert restored == {"finetune", "evaluate", "export"}, result.stdout
    assert not (repo / "models/finetuned/model.keras").exists()
    passed_on = (repo / "models/finetuned/test_probabilities.npy").read_bytes()
    assert passed_on == (repo / "models/head_test_probabilities.npy").read_bytes()


def test_editing_a_module_reruns_exactly_the_stages_that_run_it(repo: Path) -> None:
    """Only `split` imports transfer/manifests/corrections.py: `code_versions` lists the code
    again, `split` reruns, writes the same lists, and nothing after it runs. Undone, both
    come back from the run cache."""
    module = repo / "transfer/manifests/corrections.py"
    source = module.read_text()
    module.write_text(source + "# an edit\n")
    assert "changed deps" in dvc(repo, "status", "code_versions").stdout
    assert stages_run(dvc(repo, "repro").stdout) == {"code_versions", "split"}
    module.write_text(source)
    assert stages_run(dvc(repo, "repro").stdout) == set()
    assert "up to date" in dvc(repo, "status").stdout
