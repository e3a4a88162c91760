"""Fine-tuning: start from pretrained weights, freeze early stages, name the head.

    load_pretrained(model, path, arch, model_config)  .pth (published PyTorch files,
        converted on the fly), .keras or .weights.h5; everything must load except the
        head, which keeps its fresh initialisation when its shape differs (another
        class count). Anything else that does not load is an error naming it.
    freeze_until(model, prefix)  freezes every layer before the first whose name starts
        with `prefix` (e.g. "layer4": train conv5_x and fc, as the ResNet3D seed does).
    head_layer(model)  the classification head: the last layer with weights.
"""

import os
import tempfile
import warnings

import numpy as np

from keras_video.conversion.torch_weights import head_layer


def freeze_until(model, prefix):
    """Freezes the top-level layers before the first named `prefix...`; returns them."""
    names = [layer.name for layer in model.layers]
    first = next((i for i, name in enumerate(names) if name.startswith(prefix)), None)
    if first is None:
        raise ValueError(f"--freeze_until={prefix!r}: no layer of {model.name!r} starts with "
                         f"it; layers are {', '.join(n for n in names if n)}")
    frozen = model.layers[:first]
    for layer in frozen:
        layer.trainable = False  # a frozen BatchNorm also switches to inference mode
    return frozen


def _floats(model):
    return [v for v in model.weights if "float" in str(v.dtype)]


def _load_allowing_head(model, path):
    """Loads a Keras weights file; returns the variables it did not fill."""
    initial = {id(v): v.numpy() for v in _floats(model)}
    # Fill every variable with NaN first: what is still NaN afterwards was not in the
    # file (or had another shape), which skip_mismatch alone would hide.
    for v in _floats(model):
        v.assign(np.full(v.shape, np.nan, dtype=v.dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.load_weights(path, skip_mismatch=True)
    missing = [v for v in _floats(model) if np.isnan(v.numpy()).all()]
    for v in missing:
        v.assign(initial[id(v)])
    return missing


def load_pretrained(model, path, arch, model_config=None):
    """Loads `path` into `model` (built as build_model(arch, **model_config)).

    Returns a one-line report of what was loaded. Raises ValueError naming every layer
    other than the head that the file cannot fill.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: pretrained weights not found")
    head = head_layer(model)
    with tempfile.TemporaryDirectory() as tmp:
        weights = path
        if path.endswith((".pth", ".pt", ".pth.tar")):
            from keras_video.convert import from_torch

            config = {k: v for k, v in (model_config or {}).items() if k != "num_classes"}
            source = from_torch(arch, path, **config)  # its head keeps the file's classes
            weights = os.path.join(tmp, "converted.weights.h5")
            source.save_weights(weights)
        elif not path.endswith((".keras", ".weights.h5")):
            raise ValueError(f"{path}: pretrained weights must be .pth, .keras or "
                             ".weights.h5")
        missing = _load_allowing_head(model, weights)
    head_paths = {v.path for v in head.weights}
    others = sorted(v.path for v in missing if v.path not in head_paths)
    if others:
        raise ValueError(f"{path}: has no weights of the right shape for "
                         f"{', '.join(others)} (model {arch!r})")
    if missing:
        return (f"Loaded {path}: every layer but the head {head.name!r}, whose shape "
                f"differs (another class count); the head starts from a fresh "
                f"initialisation")
    return f"Loaded {path}: every layer, the head {head.name!r} included"
