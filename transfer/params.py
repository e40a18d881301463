"""params.yaml, read once into frozen dataclasses that validate every value with its name."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from transfer.errors import PipelineError

PARAMS_FILE = Path("params.yaml")
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "sgd")
ACTIVATIONS = ("relu", "gelu", "silu", "elu", "selu", "leaky_relu", "tanh", "sigmoid")
FLIP_MODES = ("none", "horizontal", "vertical", "horizontal_and_vertical")
ENGINES = ("keras", "litert")  # what runs the frozen forward passes (transfer.litert)
# The tf.distribute strategies and the precisions of training (transfer.distribution)
DISTRIBUTIONS = ("auto", "none", "mirrored", "multi_worker")
PRECISIONS = ("auto", "float32", "mixed_float16")
ACTIVATION_DTYPES = ("float16", "float32")  # how finetune stores its cached activations
# How the audit picks likely label errors (transfer.audit.label_errors): every image whose
# out-of-fold prediction is another class, or one of cleanlab's find_label_issues filters.
ALL_MISSES = "all_misses"
LABEL_RULES = (
    ALL_MISSES,
    "prune_by_noise_rate",
    "prune_by_class",
    "both",
    "confident_learning",
    "low_normalized_margin",
    "low_self_confidence",
)
WATCHED = ("loss", "accuracy")  # what the fine-tune's early stopping watches on validation


class ParamsError(PipelineError):
    """A value in params.yaml is missing, of the wrong type or out of range."""


def _require(condition: bool, name: str, expected: str, value: Any) -> None:
    if not condition:
        raise ParamsError(f"{PARAMS_FILE}: {name} must be {expected}, got {value!r}")


@dataclass(frozen=True)
class DataParams:
    source: str
    sha256: str | None = None
    max_pixels: int = 50_000_000
    max_file_mb: int = 100
    labels: str | None = None  # a labels CSV inside data.source (transfer/ingest/layout.py)

    def __post_init__(self) -> None:
        _require(bool(self.source.strip()), "data.source", "a URL or a path", self.source)
        if self.labels is not None:
            _require(bool(self.labels.strip()), "data.labels", "a CSV's path or null", self.labels)
        if self.sha256 is not None:
            digits = self.sha256.lower()
            is_hex = len(digits) == 64 and all(c in "0123456789abcdef" for c in digits)
            _require(is_hex, "data.sha256", "64 hex digits or null", self.sha256)
        _require(self.max_pixels > 0, "data.max_pixels", "positive", self.max_pixels)
        _require(self.max_file_mb > 0, "data.max_file_mb", "positive", self.max_file_mb)


@dataclass(frozen=True)
class SplitParams:
    val: float = 0.15
    test: float = 0.15
    seed: int | None = None  # None: the top-level seed (Params.split_seed)

    def __post_init__(self) -> None:
        if self.seed is not None:
            _require(self.seed >= 0, "split.seed", "0 or more, or null", self.seed)
        _require(0 <= self.val < 1, "split.val", "in [0, 1)", self.val)
        test = self.test
        _require(0 < test < 1, "split.test", "in (0, 1): evaluate needs test images", test)
        total = self.val + self.test
        _require(total < 1, "split.val + split.test", "below 1 to leave a training split", total)


@dataclass(frozen=True)
class ImageParams:
    size: int | None = None
    shard_size: int = 512
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        if self.size is not None:
            _require(self.size >= 32, "image.size", "at least 32 or null", self.size)
        _require(self.shard_size > 0, "image.shard_size", "positive", self.shard_size)
        _require(
            1 <= self.jpeg_quality <= 100, "image.jpeg_quality", "in [1, 100]", self.jpeg_quality
        )


@dataclass(frozen=True)
class BackboneParams:
    name: str = "MobileNetV2"
    weights: str | None = "imagenet"
    batch_size: int = 32
    engine: str = "litert"

    def __post_init__(self) -> None:
        # The name is checked against the registry where a backbone is looked up
        # (transfer.models.backbones), so that editing the registry reruns only the stages
        # that use it.
        _require(bool(self.name.strip()), "backbone.name", "a backbone's name", self.name)
        _require(self.batch_size > 0, "backbone.batch_size", "positive", self.batch_size)
        engines = ", ".join(ENGINES)
        _require(self.engine in ENGINES, "backbone.engine", f"one of {engines}", self.engine)


@dataclass(frozen=True)
class HeadParams:
    hidden: tuple[int, ...] = (128,)
    dropout: float = 0.2
    activation: str = "relu"
    l2: float = 0.0
    label_smoothing: float = 0.0
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 20
    patience: int = 4
    class_weights: bool = False

    def __post_init__(self) -> None:
        _require(all(u > 0 for u in self.hidden), "head.hidden", "positive units", self.hidden)
        _require(0 <= self.dropout < 1, "head.dropout", "in [0, 1)", self.dropout)
        _require(self.l2 >= 0, "head.l2", "non-negative", self.l2)
        _require(
            self.activation in ACTIVATIONS,
            "head.activation",
            f"one of {', '.join(ACTIVATIONS)}",
            self.activation,
        )
        _require(
            0 <= self.label_smoothing < 1,
            "head.label_smoothing",
            "in [0, 1)",
            self.label_smoothing,
        )
        _check_training("head", self)


@dataclass(frozen=True)
class AugmentParams:
    views: int = 3
    flip: str = "horizontal"
    rotation: float = 0.05
    zoom: float = 0.1
    translation: float = 0.1
    contrast: float = 0.1
    brightness: float = 0.1

    def __post_init__(self) -> None:
        _require(self.views >= 0, "augment.views", "0 or more", self.views)
        modes = ", ".join(FLIP_MODES)
        _require(self.flip in FLIP_MODES, "augment.flip", f"one of {modes}", self.flip)
        for name in ("rotation", "zoom", "translation", "contrast", "brightness"):
            value = getattr(self, name)
            _require(0 <= value < 1, f"augment.{name}", "in [0, 1)", value)
        if self.views:
            _require(
                self.transforms, "augment.views", "0 while every transform is off", self.views
            )

    @property
    def transforms(self) -> bool:
        """Whether any transform is on (views are then unlike the clean image)."""
        return self.flip != "none" or any(
            (self.rotation, self.zoom, self.translation, self.contrast, self.brightness)
        )


@dataclass(frozen=True)
class FinetuneParams:
    learning_rate: float = 1e-4
    warmup_epochs: int = 1
    optimizer: str = "adam"
    epochs: int = 10
    batch_size: int = 32
    patience: int = 3
    watch: str = "loss"
    label_smoothing: float = 0.0
    cache_activations: bool = True
    activation_memory_mb: int = 4096
    activation_dtype: str = "float32"

    def __post_init__(self) -> None:
        _check_training("finetune", self)
        _require(
            self.watch in WATCHED, "finetune.watch", f"one of {', '.join(WATCHED)}", self.watch
        )
        smoothing = self.label_smoothing
        _require(0 <= smoothing < 1, "finetune.label_smoothing", "in [0, 1)", smoothing)
        warmup = self.warmup_epochs
        _require(
            0 <= warmup < self.epochs, "finetune.warmup_epochs", "in [0, finetune.epochs)", warmup
        )
        memory = self.activation_memory_mb
        _require(memory >= 0, "finetune.activation_memory_mb", "non-negative", memory)
        dtype = self.activation_dtype
        _require(
            dtype in ACTIVATION_DTYPES,
            "finetune.activation_dtype",
            f"one of {', '.join(ACTIVATION_DTYPES)}",
            dtype,
        )


@dataclass(frozen=True)
class AuditParams:
    duplicate_similarity: float = 0.95
    folds: int = 5
    l2: float = 0.1
    label_issues: str = "both"
    max_suspects: float = 0.05
    outlier_neighbours: int = 30
    outlier_fence: float = 2.0
    blur_fence: float = 2.0
    picture_items: int = 24

    def __post_init__(self) -> None:
        rules = ", ".join(LABEL_RULES)
        rule = self.label_issues
        _require(rule in LABEL_RULES, "audit.label_issues", f"one of {rules}", rule)
        share = self.max_suspects
        _require(0 < share <= 1, "audit.max_suspects", "in (0, 1]", share)
        neighbours = self.outlier_neighbours
        _require(neighbours >= 1, "audit.outlier_neighbours", "at least 1", neighbours)
        _require(self.outlier_fence > 0, "audit.outlier_fence", "positive", self.outlier_fence)
        _require(self.blur_fence > 0, "audit.blur_fence", "positive", self.blur_fence)
        similarity = self.duplicate_similarity
        # Below about 0.8 most photos of a class pair up: a list too long to read.
        _require(0.8 <= similarity <= 1, "audit.duplicate_similarity", "in [0.8, 1]", similarity)
        _require(self.folds >= 2, "audit.folds", "at least 2", self.folds)
        _require(self.l2 > 0, "audit.l2", "positive", self.l2)
        _require(self.picture_items >= 1, "audit.picture_items", "at least 1", self.picture_items)


@dataclass(frozen=True)
class EvaluateParams:
    top_k: int = 3
    grid_images: int = 25
    tta: bool = True
    heat_maps: bool = True

    def __post_init__(self) -> None:
        _require(self.top_k >= 1, "evaluate.top_k", "at least 1", self.top_k)
        _require(self.grid_images >= 1, "evaluate.grid_images", "at least 1", self.grid_images)


@dataclass(frozen=True)
class ExportParams:
    batch_size: int = 8
    calibration_images: int = 32
    check_images: int | None = 256
    onnx: bool = False

    def __post_init__(self) -> None:
        _require(self.batch_size > 0, "export.batch_size", "positive", self.batch_size)
        count = self.calibration_images
        _require(count >= 1, "export.calibration_images", "at least 1", count)
        check = self.check_images
        _require(check is None or check >= 1, "export.check_images", "null or at least 1", check)


def _check_training(section: str, params: HeadParams | FinetuneParams) -> None:
    """The settings both training sections share."""
    optimizer = params.optimizer
    _require(optimizer in OPTIMIZERS, f"{section}.optimizer", f"one of {OPTIMIZERS}", optimizer)
    _require(
        params.learning_rate > 0, f"{section}.learning_rate", "positive", params.learning_rate
    )
    _require(params.batch_size > 0, f"{section}.batch_size", "positive", params.batch_size)
    _require(params.epochs >= 1, f"{section}.epochs", "at least 1", params.epochs)
    _require(params.patience >= 1, f"{section}.patience", "at least 1", params.patience)


@dataclass(frozen=True)
class Params:
    data: DataParams
    seed: int = 42
    unfreeze: int = 0
    distribute: str = "auto"
    precision: str = "auto"
    augment: AugmentParams = field(default_factory=AugmentParams)
    split: SplitParams = field(default_factory=SplitParams)
    image: ImageParams = field(default_factory=ImageParams)
    backbone: BackboneParams = field(default_factory=BackboneParams)
    head: HeadParams = field(default_factory=HeadParams)
    finetune: FinetuneParams = field(default_factory=FinetuneParams)
    audit: AuditParams = field(default_factory=AuditParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    export: ExportParams = field(default_factory=ExportParams)

    @property
    def split_seed(self) -> int:
        """The seed of the split: split.seed, or the top-level seed when it is null. Apart
        from `seed`, it checks a result on another split with the same initialisation and
        augmented views."""
        return self.seed if self.split.seed is None else self.split.seed

    def __post_init__(self) -> None:
        _require(self.unfreeze >= 0, "unfreeze", "a layer count of 0 or more", self.unfreeze)
        _require(0 <= self.seed < 2**32, "seed", "in [0, 2**32)", self.seed)  # numpy's range
        for name, choices in (("distribute", DISTRIBUTIONS), ("precision", PRECISIONS)):
            value = getattr(self, name)
            _require(value in choices, name, f"one of {', '.join(choices)}", value)


def _convert(value: Any, kind: Any, name: str) -> Any:
    """Check `value` against the annotation `kind` and convert lists and sections."""
    if dataclasses.is_dataclass(kind):
        return _build(kind, value, f"{name}.")
    options = typing.get_args(kind)
    if isinstance(kind, types.UnionType):
        if value is None and type(None) in options:
            return None
        return _convert(value, next(o for o in options if o is not type(None)), name)
    if typing.get_origin(kind) is tuple:
        _require(isinstance(value, list), name, "a list", value)
        return tuple(_convert(item, options[0], name) for item in value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    is_bool_for_int = kind is int and isinstance(value, bool)  # bool is a subclass of int
    _require(isinstance(value, kind) and not is_bool_for_int, name, expected[kind], value)
    return value


def _build(cls: type, raw: Any, prefix: str) -> Any:
    section = prefix.rstrip(".") or "the top level"
    if raw is None and prefix:
        raw = {}
    _require(isinstance(raw, dict), section, "a mapping", raw)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(f"{PARAMS_FILE}: unknown param {prefix}{unknown[0]}")
    values = {}
    for item in dataclasses.fields(cls):
        name = f"{prefix}{item.name}"
        if item.name in raw:
            values[item.name] = _convert(raw[item.name], hints[item.name], name)
        elif item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
            raise ParamsError(f"{PARAMS_FILE}: missing param {name}")
    return cls(**values)


def parse_params(raw: Any) -> Params:
    """Validate a loaded params mapping; raise ParamsError naming the first bad value."""
    return _build(Params, raw, "")


class ParamsLoader(yaml.SafeLoader):
    """YAML's safe loader, reading floats the YAML 1.2 way too: `dvc exp run -S x=3e-5` writes
    `3e-05`, a float to DVC (YAML 1.2) and text to PyYAML's YAML 1.1 rules."""


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml."""
    try:
        raw = yaml.load(path.read_text(), Loader=ParamsLoader)
    except FileNotFoundError:
        raise ParamsError(f"{path}: not found; run the stages from the project's root") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ParamsError(f"{path}: not valid YAML{where} ({problem})") from None
    except UnicodeDecodeError:
        raise ParamsError(f"{path}: not UTF-8 text") from None
    return parse_params(raw)
