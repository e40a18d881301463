"""Model factories: preprocessing, frozen backbone, head, classifier, and compiling."""

import re

import keras
import numpy as np
from keras import layers

from transfer.errors import PipelineError
from transfer.models.backbones import backbone_spec
from transfer.params import HeadParams

BACKBONE_LAYER = "backbone"
EXTRACTOR_LAYER = "feature_extractor"  # the classifier's two parts, by name
HEAD_LAYER = "head"
PREPROCESS_LAYER = "preprocess"
PROBABILITIES_LAYER = "probabilities"  # the head's softmax: float32 under mixed precision too
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406]) * 255.0
IMAGENET_STD = np.array([0.229, 0.224, 0.225]) * 255.0
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


def build_preprocessing(mode: str, image_size: int) -> keras.Sequential:
    """keras.applications' preprocess_input `mode` as built-in Keras layers over raw RGB pixels
    in [0, 255], so that a saved model opens with plain Keras anywhere.

    tf: to [-1, 1]; torch: ImageNet mean and deviation per channel; caffe: RGB to BGR (a
    frozen 1x1 convolution that permutes the channels, exact) minus the BGR mean; none: the
    backbone preprocesses inside itself.
    """
    if mode == "tf":
        steps = [layers.Rescaling(1 / 127.5, offset=-1.0, name="to_unit_range")]
    elif mode == "torch":
        steps = [
            layers.Normalization(
                mean=IMAGENET_MEAN, variance=np.square(IMAGENET_STD), name="imagenet_standardize"
            )
        ]
    elif mode == "caffe":
        steps = [layers.Conv2D(3, 1, name="rgb_to_bgr_minus_mean")]
    elif mode == "none":
        steps = [layers.Identity(name="built_into_backbone")]
    else:
        raise ValueError(f"unknown preprocessing mode {mode!r}")
    preprocessing = keras.Sequential(
        [keras.Input((image_size, image_size, 3)), *steps], name=PREPROCESS_LAYER
    )
    if mode == "caffe":
        to_bgr = np.eye(3, dtype=np.float32)[::-1].reshape(1, 1, 3, 3)  # kernel[0, 0, rgb, bgr]
        steps[0].set_weights([to_bgr, -CAFFE_MEAN_BGR.astype(np.float32)])
    preprocessing.trainable = False
    return preprocessing


def _weights_error(name: str, error: Exception) -> PipelineError:
    url = re.search(r"https?://\S+?\.h5", str(error))
    file = url.group(0).rsplit("/", 1)[-1] if url else "the weights file"
    return PipelineError(
        f"backbone.weights=imagenet: Keras could not get {file} for {name} "
        f"({type(error).__name__}); put it in $KERAS_HOME/models/ "
        "(KERAS_HOME defaults to ~/.keras) or set backbone.weights to the path of a weights file"
    )


def build_feature_extractor(name: str, image_size: int, weights: str | None) -> keras.Model:
    """Raw RGB pixels in [0, 255] -> pooled features of a frozen keras.applications backbone."""
    spec = backbone_spec(name)
    if image_size < spec.min_size:
        raise PipelineError(
            f"image.size={image_size} is below {name}'s minimum of {spec.min_size}"
        )
    constructor = getattr(keras.applications, name)
    kwargs = {"include_top": False, "input_shape": (image_size, image_size, 3), "pooling": "avg"}
    try:
        backbone = constructor(weights="imagenet" if weights == "imagenet" else None, **kwargs)
    except Exception as error:  # Keras raises a bare Exception when a download fails
        if weights == "imagenet":
            raise _weights_error(name, error) from None
        raise
    if weights not in (None, "imagenet"):
        try:
            backbone.load_weights(weights)
        except (OSError, ValueError) as error:
            raise PipelineError(f"backbone.weights={weights}: cannot load ({error})") from None
    backbone.name = BACKBONE_LAYER
    backbone.trainable = False
    images = keras.Input((image_size, image_size, 3), name="image")
    pixels = build_preprocessing(spec.preprocessing, image_size)(images)
    features = backbone(pixels, training=False)  # BatchNormalization stays in inference mode
    return keras.Model(images, features, name=EXTRACTOR_LAYER)


def build_head(n_features: int, n_classes: int, params: HeadParams) -> keras.Model:
    """Features -> class probabilities: [dropout, dense] per hidden size, dropout, softmax."""
    regularizer = keras.regularizers.L2(params.l2) if params.l2 else None
    features = keras.Input((n_features,), name="features")
    x = features
    for index, units in enumerate(params.hidden):
        x = layers.Dropout(params.dropout, name=f"dropout_{index}")(x)
        x = layers.Dense(
            units, params.activation, kernel_regularizer=regularizer, name=f"hidden_{index}"
        )(x)
    x = layers.Dropout(params.dropout, name="dropout_out")(x)
    probabilities = layers.Dense(
        n_classes, "softmax", kernel_regularizer=regularizer, name=PROBABILITIES_LAYER
    )(x)
    return keras.Model(features, probabilities, name=HEAD_LAYER)


def build_classifier(extractor: keras.Model, head: keras.Model) -> keras.Model:
    """The full model: raw pixels -> class probabilities, sharing the given layers."""
    images = keras.Input(extractor.input_shape[1:], name="image")
    return keras.Model(images, head(extractor(images)), name="classifier")


def compile_model(
    model: keras.Model,
    optimizer: str,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule,
    smoothing: float = 0.0,
    steps_per_execution: int = 1,
) -> None:
    """Compile for one-hot labels with accuracy; `steps_per_execution` steps per graph call."""
    model.compile(
        optimizer=keras.optimizers.get(
            {"class_name": optimizer, "config": {"learning_rate": learning_rate}}
        ),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=smoothing),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
