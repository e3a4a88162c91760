"""Pretrained weights into keras_video models: published PyTorch checkpoints converted
(from_torch), and fine-tuning starts (load_pretrained, freeze_until).

    model = from_torch("r3d50", "r3d50_K_200ep.pth")             # 700 Kinetics classes
    model = from_torch("r3d50", path, num_classes=10, skip_head=True)  # all but fc

    python -m keras_video.convert --arch=r3d50 --checkpoint=r3d50_K_200ep.pth \\
        --output=r3d50_K.weights.h5 [--num_classes=10] [--shortcut_type=B] ...

Architectures and the files they read:
  c3d                 the C3D seed's Sports-1M `c3d-pretrained.pth` (keys features.N /
                      classifier.N, renamed as the seed's __load_pretrained_weights
                      does, plus classifier.6 -> fc8, its 487-class head), or a state_dict
                      with the module names (conv1.weight ... fc8.bias)
  r3d10 ... r3d200,   kenshohara/3D-ResNets-PyTorch files: r3d*_200ep.pth, r2p1d*_200ep
  r2plus1d18/34       (shortcut B, the default), the 2017 resnet-*-kinetics.pth (resnet-18
                      and -34: --shortcut_type=A); a dict with `state_dict` (keys maybe
                      prefixed `module.`), `arch`, `epoch`, ...
  resnet18/34/50/101  torchvision's ImageNet files, into keras_video.models.resnet2d's
                      classifier (the frame backbones also read these .pth directly)
Every key must find its layer and every layer its keys, with the right shapes: what
does not is named in one ValueError and nothing is assigned. num_classes defaults to
the checkpoint's head; with another class count, skip_head=True (the CLI does it by
itself and says so) loads everything but the head.

load_pretrained(model, path, arch, model_config) reads a .pth (converted on the fly),
.keras or .weights.h5: everything must load except the head, which keeps its fresh
initialisation when its shape differs (another class count); anything else that does
not load is an error naming it. freeze_until(model, prefix) freezes every layer before
the first whose name starts with `prefix` (e.g. "layer4": train conv5_x and fc, as the
ResNet3D seed does).

Reading .pth files needs no PyTorch (keras_video.conversion.torch_file); the weights
go into the model through keras_video.conversion.torch_weights.
"""

import os
import tempfile
import warnings

import numpy as np

from keras_video.conversion.torch_file import torch_state_dict
from keras_video.conversion.torch_weights import head_layer, load_state_dict
from keras_video.models import build_model, model_arguments, resnet2d

ARCHS_2D = ("resnet18", "resnet34", "resnet50", "resnet101")
ARCHS_3D = ("c3d", "r3d10", "r3d18", "r3d34", "r3d50", "r3d101", "r3d152", "r3d200",
            "r2plus1d18", "r2plus1d34")
ARCHS = ARCHS_3D + ARCHS_2D

# The C3D seed's __load_pretrained_weights: module in c3d-pretrained.pth -> C3D module.
# It drops classifier.6, the Sports-1M fc8; we keep it as fc8 (skip_head drops it).
C3D_SEED_MODULES = {
    "features.0": "conv1", "features.3": "conv2", "features.6": "conv3a",
    "features.8": "conv3b", "features.11": "conv4a", "features.13": "conv4b",
    "features.16": "conv5a", "features.18": "conv5b", "classifier.0": "fc6",
    "classifier.3": "fc7", "classifier.6": "fc8",
}


def rename_c3d_seed_keys(state_dict):
    if not any(k.startswith(("features.", "classifier.")) for k in state_dict):
        return state_dict
    renamed = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        renamed[f"{C3D_SEED_MODULES.get(module, module)}.{param}"] = value
    return renamed


def head_key(arch):
    return "fc8.weight" if arch == "c3d" else "fc.weight"


def convert(arch, state_dict, info, skip_head, model_config):
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")
    source = info.get("source", "state_dict")
    if arch == "c3d":
        state_dict = rename_c3d_seed_keys(state_dict)
    config = dict(model_config)
    if config.get("num_classes") is None:
        head = state_dict.get(head_key(arch))
        if head is None:
            raise ValueError(f"{source}: has no {head_key(arch)!r} to take the class "
                             "count from; pass num_classes (and skip_head=True)")
        config["num_classes"] = int(head.shape[0])

    if arch in ARCHS_2D:
        unknown = set(config) - {"num_classes", "input_shape"}
        if unknown:
            raise ValueError(f"{arch} takes num_classes and input_shape, not "
                             f"{', '.join(sorted(unknown))}")
        model = resnet2d.resnet_classifier(int(arch[6:]), config.get("input_shape", (224, 224, 3)),
                                           config["num_classes"])
        return load_state_dict(model, state_dict, skip_head, source)

    unknown = set(config) - model_arguments(arch)
    if unknown:
        raise ValueError(f"{arch} has no option {', '.join(sorted(unknown))}")
    model = build_model(arch, **config)
    try:
        return load_state_dict(model, state_dict, skip_head, source)
    except ValueError as error:
        hints = []
        if "arch" in info:
            hints.append(f"the checkpoint was saved as arch {info['arch']!r}")
        if f"'{head_key(arch)}'" in str(error) and not skip_head:
            hints.append("another class count? skip_head=True loads all but the head")
        raise ValueError(str(error) + "".join(f"\n({hint})" for hint in hints)) from None


def from_torch(arch, checkpoint, skip_head=False, **model_config):
    """A keras_video model of `arch` with the weights of a PyTorch checkpoint.

    checkpoint: a .pth path, or a loaded checkpoint / state_dict (arrays or tensors).
    model_config: the builder's options (keras_video.models.build_model, e.g.
    shortcut_type="A", input_shape, classifier_activation=None); num_classes defaults to
    the checkpoint's head. For resnet18/34/50/101 the model is
    keras_video.models.resnet2d.resnet_classifier (options num_classes, input_shape).
    """
    state_dict, info = torch_state_dict(checkpoint)
    return convert(arch, state_dict, info, skip_head, model_config)






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
