"""The model registry: `build_model(name, **config)` is the one way to make a model."""

import inspect

from keras_video.models.cnn_lstm import cnn_lstm
from keras_video.models import c3d as _c3d, frame_cnn as _frame_cnn, resnet3d as _resnet3d
from keras_video.models import dff as _dff  # the module stays keras_video.models.dff
from keras_video.models import rfcn as _rfcn

_REGISTRY = {
    "cnn_lstm": cnn_lstm,
    "dff": _dff.dff,  # Deep Feature Flow, inputs current + key frame (keras_video.models.dff)
    "frame_seg": _dff.frame_seg,  # its per-frame segmentation baseline
    "dff_rfcn": _rfcn.dff_rfcn,  # Deep Feature Flow video object detection (R-FCN)
    "rfcn": _rfcn.rfcn,  # its per-frame detector
    # 3D CNNs on clips [T, H, W, 3]; keras_video.models.pretrained loads their published weights
    "c3d": _c3d.c3d,
    **{f"r3d{d}": getattr(_resnet3d, f"r3d{d}") for d in (10, 18, 34, 50, 101, 152, 200)},
    "r2plus1d18": _resnet3d.r2plus1d18,
    "r2plus1d34": _resnet3d.r2plus1d34,
    "frame_cnn": _frame_cnn.frame_cnn,  # per-frame 2D CNN, scores averaged: the no-motion baseline
}


def register_model(name, builder):
    """Adds a model family; `builder(**config) -> keras.Model`."""
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = builder


def model_names():
    return sorted(_REGISTRY)


def model_arguments(name):
    """The names of the keyword arguments model family `name` takes."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    return set(inspect.signature(_REGISTRY[name]).parameters)


def build_model(name, **config):
    """A keras.Model of family `name` (see model_names()) built from `config`."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(model_names())}")
    return _REGISTRY[name](**config)


__all__ = ["build_model", "model_arguments", "model_names", "register_model"]
