"""Copying a PyTorch state_dict (numpy arrays) into a Keras model: the one loader of
the package, for the 3D CNNs (C3D, ResNet3D, R(2+1)D) and the 2D ResNets alike.

Each weighted Keras layer takes the keys of the PyTorch module of the same name ("." ->
"_"; R(2+1)D's conv1_s / bn1_t keep their underscore): torchvision's "layer1.0.conv1"
is the Keras layer "layer1_0_conv1". Unused keys, missing keys and shape mismatches
raise one ValueError naming all of them, and then nothing is assigned.
"""

import re

import keras
import numpy as np

from keras_video.conversion.torch_file import _to_numpy, torch_state_dict


def _transpose(*axes):
    return lambda array: array.transpose(*axes)


def _torch_params(layer):
    """{torch parameter: (Keras attribute, numpy conversion)} for one weighted layer."""
    layers = keras.layers
    bias = {"bias": ("bias", None)} if getattr(layer, "use_bias", False) else {}
    if isinstance(layer, layers.Conv3D):
        return {"weight": ("kernel", _transpose(2, 3, 4, 1, 0)), **bias}  # OITHW -> THWIO
    if isinstance(layer, layers.Conv2D):
        return {"weight": ("kernel", _transpose(2, 3, 1, 0)), **bias}  # OIHW -> HWIO
    if isinstance(layer, layers.Dense):
        return {"weight": ("kernel", _transpose(1, 0)), **bias}  # (out, in) -> (in, out)
    if isinstance(layer, layers.BatchNormalization):
        return {"weight": ("gamma", None), "bias": ("beta", None),
                "running_mean": ("moving_mean", None),
                "running_var": ("moving_variance", None)}
    return None


def torch_module(layer_name):
    """The PyTorch module of a Keras layer name ("_" -> "."); R(2+1)D's conv1_s / bn1_t
    keep their own underscore."""
    return re.sub(r"\.([st])(?=\.|$)", r"_\1", layer_name.replace("_", "."))


def _leaves(model):
    """The layers holding weights, nested models and TimeDistributed unwrapped."""
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
        if isinstance(inner, keras.Model):
            yield from _leaves(inner)
        elif inner.weights:
            yield inner


def head_layer(model):
    """The classification head: the last layer with weights (inside nested models too).
    The one head rule of the package: conversion, fine-tuning and the head's learning
    rate multiplier all use it."""
    leaves = list(_leaves(model))
    if not leaves:
        raise ValueError(f"model {model.name!r} has no layer with weights")
    return leaves[-1]


def checkpoint_head(state_dict):
    """The module of a state_dict's classification head: its last fully connected layer
    (a 2-D weight: fc, C3D's fc8), in the order torch.save keeps the modules in."""
    linear = [key.rpartition(".")[0] for key, value in state_dict.items()
              if key.endswith(".weight") and np.ndim(value) == 2]
    return linear[-1] if linear else None


def load_state_dict(model, state_dict, skip_head=False, source="state_dict"):
    """Copies a PyTorch state_dict (numpy arrays or torch tensors; a DataParallel
    `module.` prefix is stripped) into `model`, whose weighted layers sit flat in it.

    skip_head=True loads no classifier: the model's head (`head_layer`, where it is a
    fully connected layer) keeps its weights and the checkpoint's keys of that module
    are ignored (another class count, or a checkpoint without its head); and where the
    model has no layer of the checkpoint's head (`checkpoint_head`), a backbone, those
    keys are ignored too.
    """
    state_dict = {key.removeprefix("module."): _to_numpy(value)
                  for key, value in state_dict.items()}
    skipped = set()
    if skip_head:
        head = head_layer(model)
        if isinstance(head, keras.layers.Dense):
            skipped.add(torch_module(head.name))
        theirs = checkpoint_head(state_dict)
        if theirs and theirs not in {torch_module(layer.name) for layer in model.layers}:
            skipped.add(theirs)
    expected, problems = {}, []
    for layer in model.layers:
        module = torch_module(layer.name)
        if not layer.weights or module in skipped:
            continue
        params = _torch_params(layer)
        if params is None:
            problems.append(f"layer {layer.name!r} ({type(layer).__name__}) has no "
                            "PyTorch equivalent")
            continue
        for torch_name, (attr, convert) in params.items():
            expected[f"{module}.{torch_name}"] = (layer, attr, convert)

    assignments = []
    for key, array in state_dict.items():
        if key.endswith(".num_batches_tracked") or key.rpartition(".")[0] in skipped:
            continue
        if key not in expected:
            problems.append(f"unused key {key!r} {tuple(array.shape)}")
            continue
        layer, attr, convert = expected.pop(key)
        variable = getattr(layer, attr)
        converted = convert(array) if convert else array
        if tuple(converted.shape) != tuple(variable.shape):
            problems.append(f"shape mismatch for {key!r}: the checkpoint's "
                            f"{tuple(array.shape)} is {tuple(converted.shape)} in Keras "
                            f"layout, Keras layer {layer.name!r} has {attr} "
                            f"{tuple(variable.shape)}")
            continue
        assignments.append((variable, converted))
    problems += [f"missing key {key!r} (Keras layer {layer.name!r}, {attr})"
                 for key, (layer, attr, _) in expected.items()]
    if problems:
        raise ValueError(f"{source} does not fit model {model.name!r}:\n  "
                         + "\n  ".join(problems))
    for variable, array in assignments:
        variable.assign(np.asarray(array, dtype=variable.dtype))
    return model


def load_torch_file(model, path, skip_head=False):
    """load_state_dict of a .pth file (torch_file.torch_state_dict: no PyTorch needed)."""
    state_dict, info = torch_state_dict(path)
    return load_state_dict(model, state_dict, skip_head, info["source"])
