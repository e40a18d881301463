"""The registry of keras.applications backbones: constructor, preprocessing, default size."""

from dataclasses import dataclass


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone and feed it raw RGB pixels in [0, 255]."""

    constructor: str  # attribute of keras.applications
    preprocessing: str  # a mode of layers.Preprocess: tf, caffe, torch or none (built in)
    default_size: int  # the input side the ImageNet weights were trained at
    features: int  # width of the globally pooled feature vector
    min_size: int = 32  # smallest input side the architecture accepts


BACKBONES: dict[str, BackboneSpec] = {
    "MobileNetV2": BackboneSpec("MobileNetV2", "tf", 224, 1280),
    "MobileNetV3Small": BackboneSpec("MobileNetV3Small", "none", 224, 576),
    "MobileNetV3Large": BackboneSpec("MobileNetV3Large", "none", 224, 960),
    "EfficientNetB0": BackboneSpec("EfficientNetB0", "none", 224, 1280),
    "EfficientNetB1": BackboneSpec("EfficientNetB1", "none", 240, 1280),
    "EfficientNetB2": BackboneSpec("EfficientNetB2", "none", 260, 1408),
    "EfficientNetB3": BackboneSpec("EfficientNetB3", "none", 300, 1536),
    "EfficientNetB4": BackboneSpec("EfficientNetB4", "none", 380, 1792),
    "EfficientNetB5": BackboneSpec("EfficientNetB5", "none", 456, 2048),
    "EfficientNetB6": BackboneSpec("EfficientNetB6", "none", 528, 2304),
    "EfficientNetB7": BackboneSpec("EfficientNetB7", "none", 600, 2560),
    "EfficientNetV2B0": BackboneSpec("EfficientNetV2B0", "none", 224, 1280),
    "EfficientNetV2B1": BackboneSpec("EfficientNetV2B1", "none", 240, 1280),
    "EfficientNetV2B2": BackboneSpec("EfficientNetV2B2", "none", 260, 1408),
    "EfficientNetV2B3": BackboneSpec("EfficientNetV2B3", "none", 300, 1536),
    "EfficientNetV2S": BackboneSpec("EfficientNetV2S", "none", 384, 1280),
    "ResNet50": BackboneSpec("ResNet50", "caffe", 224, 2048),
    "ResNet50V2": BackboneSpec("ResNet50V2", "tf", 224, 2048),
    "InceptionV3": BackboneSpec("InceptionV3", "tf", 299, 2048, min_size=75),
    "Xception": BackboneSpec("Xception", "tf", 299, 2048, min_size=71),
    "VGG16": BackboneSpec("VGG16", "caffe", 224, 512),
    "DenseNet121": BackboneSpec("DenseNet121", "torch", 224, 1024),
    "ConvNeXtTiny": BackboneSpec("ConvNeXtTiny", "none", 224, 768),
}
