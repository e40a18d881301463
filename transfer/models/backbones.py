"""The registry of keras.applications backbones (by constructor name): preprocessing, sizes.

Plain data, without Keras, so that `cache` can read a default size cheaply.
"""

from dataclasses import dataclass

from transfer.params import ParamsError


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone and feed it raw RGB pixels in [0, 255]."""

    preprocessing: str  # keras.applications' preprocess_input mode: tf, caffe, torch or none
    default_size: int  # the input side the ImageNet weights were trained at
    features: int  # width of the globally pooled feature vector
    min_size: int = 32  # smallest input side the architecture accepts


BACKBONES: dict[str, BackboneSpec] = {
    "MobileNetV2": BackboneSpec("tf", 224, 1280),
    "MobileNetV3Small": BackboneSpec("none", 224, 576),
    "MobileNetV3Large": BackboneSpec("none", 224, 960),
    "EfficientNetB0": BackboneSpec("none", 224, 1280),
    "EfficientNetB1": BackboneSpec("none", 240, 1280),
    "EfficientNetB2": BackboneSpec("none", 260, 1408),
    "EfficientNetB3": BackboneSpec("none", 300, 1536),
    "EfficientNetB4": BackboneSpec("none", 380, 1792),
    "EfficientNetB5": BackboneSpec("none", 456, 2048),
    "EfficientNetB6": BackboneSpec("none", 528, 2304),
    "EfficientNetB7": BackboneSpec("none", 600, 2560),
    "EfficientNetV2B0": BackboneSpec("none", 224, 1280),
    "EfficientNetV2B1": BackboneSpec("none", 240, 1280),
    "EfficientNetV2B2": BackboneSpec("none", 260, 1408),
    "EfficientNetV2B3": BackboneSpec("none", 300, 1536),
    "EfficientNetV2S": BackboneSpec("none", 384, 1280),
    "ResNet50": BackboneSpec("caffe", 224, 2048),
    "ResNet50V2": BackboneSpec("tf", 224, 2048),
    "InceptionV3": BackboneSpec("tf", 299, 2048, min_size=75),
    "Xception": BackboneSpec("tf", 299, 2048, min_size=71),
    "VGG16": BackboneSpec("caffe", 224, 512),
    "DenseNet121": BackboneSpec("torch", 224, 1024),
    "ConvNeXtTiny": BackboneSpec("none", 224, 768),
}


def backbone_spec(name: str) -> BackboneSpec:
    """The registry's entry for backbone.name; a one-line error naming the param if unknown."""
    if name not in BACKBONES:
        raise ParamsError(
            f"params.yaml: backbone.name must be one of {', '.join(BACKBONES)}, got {name!r}"
        )
    return BACKBONES[name]


def input_size(image_size: int | None, name: str) -> int:
    """The side images are resized to: image.size, or the backbone's default."""
    return image_size or backbone_spec(name).default_size
