"""params.yaml: every bad value is one line naming the param."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT
from transfer.models.backbones import backbone_spec
from transfer.params import ParamsError, load_params, parse_params

DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_value(key: str, value: Any) -> dict:
    raw = copy.deepcopy(DEFAULTS)
    *sections, name = key.split(".")
    section = raw
    for part in sections:
        section = section[part]
    section[name] = value
    return raw


def test_the_shipped_params_are_valid() -> None:
    params = parse_params(DEFAULTS)
    assert (params.seed, params.unfreeze, params.backbone.name) == (42, 0, "MobileNetV2")


def test_a_param_left_out_takes_its_value_in_the_shipped_params_yaml() -> None:
    assert parse_params({"data": DEFAULTS["data"]}) == parse_params(DEFAULTS)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("seed", "x", "seed must be an integer, got 'x'"),
        ("seed", -1, "seed must be in [0, 2**32), got -1"),
        ("unfreeze", -3, "unfreeze must be a layer count of 0 or more, got -3"),
        ("backbone.name", " ", "backbone.name must be a backbone's name, got ' '"),
        ("backbone.batch_size", True, "backbone.batch_size must be an integer, got True"),
        ("split.val", 0.9, "split.val + split.test must be below 1 to leave a training split"),
        ("split.test", 0, "split.test must be in (0, 1): evaluate needs test images, got 0.0"),
        ("image.size", "big", "image.size must be an integer, got 'big'"),
        ("head.hidden", [0], "head.hidden must be positive units, got (0,)"),
        ("head.activation", "relu7", "head.activation must be one of relu, gelu, silu, "),
        ("head.epochs", 1.5, "head.epochs must be an integer, got 1.5"),
        ("head.dropuot", 0.1, "unknown param head.dropuot"),
        ("augment.flip", "sideways", "augment.flip must be one of none, "),
        ("augment.zoom", 1.2, "augment.zoom must be in [0, 1), got 1.2"),
        ("augment.views", -1, "augment.views must be 0 or more, got -1"),
        ("finetune.warmup_epochs", 25, "finetune.warmup_epochs must be in [0, finetune.epochs)"),
        ("finetune.activation_dtype", "int8", "finetune.activation_dtype must be one of float16"),
        ("audit.max_suspects", 0, "audit.max_suspects must be in (0, 1], got 0"),
        ("evaluate.tta", "yes", "evaluate.tta must be true or false, got 'yes'"),
        ("export.onnx", "yes", "export.onnx must be true or false, got 'yes'"),
        ("distribute", "ring", "distribute must be one of auto, none, mirrored, multi_worker, "),
        ("precision", "float16", "precision must be one of auto, float32, mixed_float16, got "),
    ],
)
def test_a_bad_value_is_one_line_naming_the_param(key: str, value: Any, message: str) -> None:
    with pytest.raises(ParamsError) as error:
        parse_params(with_value(key, value))
    text = str(error.value)
    assert text.startswith(f"params.yaml: {message}")
    assert "\n" not in text


def test_views_without_any_transform_are_one_line_naming_the_param() -> None:
    transforms_off = {"flip": "none", "rotation": 0, "zoom": 0, "translation": 0}
    raw = with_value("augment", {"views": 2, **transforms_off, "contrast": 0, "brightness": 0})
    with pytest.raises(ParamsError, match=r"augment.views must be 0 while every transform is off"):
        parse_params(raw)


def test_broken_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\nhead: [\n")
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML at line 3 \("):
        load_params(path)
    path.write_text("seed: 1\x07\n")  # a control character: a YAML reader error
    with pytest.raises(ParamsError, match=r"params.yaml: not valid YAML \("):
        load_params(path)


def test_a_float_as_dvc_writes_it_reads_as_a_number(tmp_path: Path) -> None:
    """`dvc exp run -S finetune.learning_rate=3e-5` writes `3e-05` (YAML 1.2), which YAML 1.1
    reads as text."""
    path = tmp_path / "params.yaml"
    text = yaml.safe_dump(with_value("finetune.learning_rate", 0.000123))
    path.write_text(text.replace("0.000123", "3e-05"))
    assert load_params(path).finetune.learning_rate == 3e-05
    path.write_text(text.replace("0.000123", "3e5x"))
    message = "^params.yaml: finetune.learning_rate must be a number, got '3e5x'$"
    with pytest.raises(ParamsError, match=message):
        load_params(path)


def test_an_unknown_backbone_is_one_line_naming_the_param() -> None:
    """Checked where a backbone is looked up (cache, extract), not in params.py, so that the
    registry is not a dependency of every stage."""
    with pytest.raises(ParamsError) as error:
        backbone_spec("ResNet9")
    assert str(error.value).startswith("params.yaml: backbone.name must be one of MobileNetV2, ")
    assert str(error.value).endswith(", got 'ResNet9'")
    assert backbone_spec("VGG16").preprocessing == "caffe"
