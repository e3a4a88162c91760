"""Published PyTorch checkpoints -> keras_video models.

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

Reading .pth files needs no PyTorch: `read_torch_file` reads both formats of
torch.save (the zip archive of PyTorch >= 1.6 and the older "legacy" stream) with an
unpickler that rebuilds tensors as numpy arrays, plain containers and nothing else:
no code from the file runs (unknown classes become inert placeholders). Anything
else (e.g. the pre-2018 tar format) goes to torch.load(weights_only=True) when PyTorch
is installed.
"""

import collections
import io
import os
import pickle
import re
import zipfile
from collections.abc import Mapping

import numpy as np

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


# ---------------------------------------------------------------- reading .pth files

_STORAGE_DTYPES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2",
    "BFloat16Storage": "u2", "LongStorage": "i8", "IntStorage": "i4",
    "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
    "UntypedStorage": "u1",
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER


class _StorageType:
    """What the unpickler returns for torch.FloatStorage & co.: a dtype."""

    def __init__(self, name):
        self.name = name


class _Storage:
    """A flat numpy array, filled when its bytes are read (at the end in legacy files)."""

    def __init__(self, storage_type, base=None, offset=0):
        self.storage_type, self.base, self.offset = storage_type, base, offset
        self.array = None

    def fill(self, raw, little_endian):
        dtype = np.dtype(_STORAGE_DTYPES[self.storage_type.name])
        array = np.frombuffer(raw, dtype.newbyteorder("<" if little_endian else ">"))
        if self.storage_type.name == "BFloat16Storage":  # bfloat16: float32's top half
            array = (array.astype(np.uint32) << 16).view(np.float32)
        self.array = array.astype(array.dtype.newbyteorder("="))

    def values(self):
        if self.base is not None:  # a legacy storage view
            return self.base.values()[self.offset:]
        return self.array


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, offset
        self.size, self.stride = tuple(size), tuple(stride)

    def numpy(self):
        data = self.storage.values()
        if 0 in self.size:
            return np.zeros(self.size, data.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or min(self.stride, default=0) < 0 or last >= data.size:
            raise ValueError(f"a tensor of size {self.size} lies outside its storage")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], self.size, [s * data.itemsize for s in self.stride])
        return np.array(view)  # contiguous, and independent of the storage


class _Opaque:
    """Stands for any class the file names that is not a tensor or a container."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


def _rebuild_tensor(storage, offset, size, stride, *unused):
    return _Tensor(storage, offset, size, stride)


_SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,  # PyTorch < 0.4
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): lambda data, *unused: data,
    ("torch._utils", "_rebuild_parameter_with_state"): lambda data, *unused: data,
    ("torch._tensor", "_rebuild_from_type_v2"): lambda func, cls, args, state: func(*args),
    ("_codecs", "encode"): lambda text, encoding="latin1": text.encode(encoding),
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storage_for=None):
        super().__init__(file, encoding="utf-8")
        self._storage_for = storage_for

    def find_class(self, module, name):
        if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[module, name]
        return type(f"{module}.{name}", (_Opaque,), {})

    def persistent_load(self, pid):
        kind = pid[0].decode() if isinstance(pid[0], bytes) else pid[0]
        if kind != "storage" or self._storage_for is None:
            raise pickle.UnpicklingError(f"unsupported persistent id {kind!r}")
        return self._storage_for(*pid[1:])


def _materialize(obj):
    """The unpickled object with every tensor a numpy array."""
    if isinstance(obj, _Tensor):
        return obj.numpy()
    if isinstance(obj, dict):
        return type(obj)((k, _materialize(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        pickles = sorted((n for n in names if n.endswith("data.pkl")), key=len)
        if not pickles:
            raise ValueError(f"{path}: a zip file without data.pkl, not a torch.save file")
        prefix = pickles[0][: -len("data.pkl")]
        little = True
        if prefix + "byteorder" in names:
            little = archive.read(prefix + "byteorder").decode().strip() == "little"
        storages = {}

        def storage_for(storage_type, key, location, numel):
            if key not in storages:
                storages[key] = _Storage(storage_type)
                storages[key].fill(archive.read(f"{prefix}data/{key}"), little)
            return storages[key]

        obj = _Unpickler(io.BytesIO(archive.read(pickles[0])), storage_for).load()
    return _materialize(obj)


def _read_legacy(file, path):
    """torch.save(..., _use_new_zipfile_serialization=False) and PyTorch < 1.6: pickles
    (magic number, protocol, sys_info, the object, its storage keys), then each storage
    as an int64 element count and its bytes."""
    if _Unpickler(file).load() != _LEGACY_MAGIC:
        raise ValueError(f"{path}: not a PyTorch checkpoint")
    _Unpickler(file).load()  # protocol version
    sys_info = _Unpickler(file).load()
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    storages = {}

    def storage_for(storage_type, key, location, numel, view=None):
        if key not in storages:
            storages[key] = _Storage(storage_type)
        if view is None:
            return storages[key]
        _view_key, offset, _view_size = view
        return _Storage(storage_type, base=storages[key], offset=offset)

    obj = _Unpickler(file, storage_for).load()
    for key in _Unpickler(file).load():
        storage = storages[key]
        numel = int.from_bytes(file.read(8), "little" if little else "big")
        itemsize = np.dtype(_STORAGE_DTYPES[storage.storage_type.name]).itemsize
        raw = file.read(numel * itemsize)
        if len(raw) != numel * itemsize:
            raise ValueError(f"{path}: truncated (storage {key!r})")
        storage.fill(raw, little)
    return _materialize(obj)


def read_torch_file(path):
    """The object a torch.save file holds, tensors as numpy arrays; no PyTorch needed."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        with open(path, "rb") as file:
            return _read_legacy(file, path)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, KeyError,
            TypeError, AttributeError, IndexError, OverflowError) as error:
        reason = error
    try:
        import torch  # only for formats the reader above does not know
    except ImportError:
        raise ValueError(f"{path}: cannot read it as a torch.save file ({reason}); "
                         "installing PyTorch would let torch.load try") from None
    try:
        return _materialize_torch(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as error:
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({reason}; "
                         f"torch.load: {error})") from None


def _to_numpy(value):
    if hasattr(value, "detach"):  # a torch tensor; torch itself is not imported here
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        return value.numpy()
    return np.asarray(value)


def _materialize_torch(obj):
    if hasattr(obj, "detach"):
        return _to_numpy(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _materialize_torch(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize_torch(v) for v in obj)
    return obj


def torch_state_dict(checkpoint):
    """(state_dict of numpy arrays, info) from a .pth path or a loaded checkpoint.

    Unwraps {"state_dict": ..., "arch": ..., "epoch": ...} (info keeps arch and epoch)
    and strips DataParallel's `module.` prefix.
    """
    obj = read_torch_file(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    source = os.fspath(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else "state_dict"
    info = {"source": source}
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        info.update({k: obj[k] for k in ("arch", "epoch") if k in obj})
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{source}: holds a {type(obj).__name__}, not a state_dict")
    state_dict, problems = {}, []
    for key, value in obj.items():
        value = _to_numpy(value) if hasattr(value, "detach") else value
        if not isinstance(value, np.ndarray):
            problems.append(f"{key!r} is a {type(value).__name__}, not a tensor")
            continue
        state_dict[str(key).removeprefix("module.")] = value
    if problems:
        raise ValueError(f"{source}: not a state_dict of tensors: " + "; ".join(problems))
    return state_dict, info


# ---------------------------------------------------------------- loading into Keras

def _transpose(*axes):
    return lambda array: array.transpose(*axes)


def _torch_params(layer):
    """{torch parameter: (Keras attribute, numpy conversion)} for one weighted layer."""
    from keras import layers

    bias = {"bias": ("bias", None)} if getattr(layer, "use_bias", False) else {}
    if isinstance(layer, layers.Conv3D):
        return {"weight": ("kernel", _transpose(2, 3, 4, 1, 0)), **bias}  # OITHW -> THWIO
    if isinstance(layer, layers.Dense):
        return {"weight": ("kernel", _transpose(1, 0)), **bias}  # (out, in) -> (in, out)
    if isinstance(layer, layers.BatchNormalization):
        return {"weight": ("gamma", None), "bias": ("beta", None),
                "running_mean": ("moving_mean", None),
                "running_var": ("moving_variance", None)}
    return None


def _torch_module(layer_name):
    """The inverse of PyTorch module name -> Keras layer name ("." -> "_"); R(2+1)D's
    conv1_s / bn1_t keep their own underscore."""
    return re.sub(r"\.([st])(?=\.|$)", r"_\1", layer_name.replace("_", "."))


def head_layer(model):
    """The classification head: the last layer with weights."""
    return [layer for layer in model.layers if layer.weights][-1]


def load_state_dict(model, state_dict, skip_head=False, source="state_dict"):
    """Copies a PyTorch state_dict (numpy arrays) into a keras_video 3D CNN.

    Each weighted Keras layer takes the keys of the PyTorch module of the same name
    ("." -> "_"). Unused keys, missing keys and shape mismatches raise one ValueError
    naming all of them, and then nothing is assigned. skip_head=True ignores the head's
    keys and leaves the Keras head as it is.
    """
    head = head_layer(model)
    expected, problems = {}, []
    for layer in model.layers:
        if not layer.weights or (skip_head and layer is head):
            continue
        params = _torch_params(layer)
        if params is None:
            problems.append(f"layer {layer.name!r} ({type(layer).__name__}) has no "
                            "PyTorch equivalent")
            continue
        module = _torch_module(layer.name)
        for torch_name, (attr, convert) in params.items():
            expected[f"{module}.{torch_name}"] = (layer, attr, convert)

    assignments = []
    for key, array in state_dict.items():
        module = key.rpartition(".")[0]
        if key.endswith(".num_batches_tracked") or (skip_head and module == _torch_module(head.name)):
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


def _rename_c3d_seed_keys(state_dict):
    if not any(k.startswith(("features.", "classifier.")) for k in state_dict):
        return state_dict
    renamed = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        renamed[f"{C3D_SEED_MODULES.get(module, module)}.{param}"] = value
    return renamed


def _head_key(arch):
    return "fc8.weight" if arch == "c3d" else "fc.weight"


def _convert(arch, state_dict, info, skip_head, model_config):
    from keras_video.models import build_model, model_arguments

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")
    source = info.get("source", "state_dict")
    if arch == "c3d":
        state_dict = _rename_c3d_seed_keys(state_dict)
    config = dict(model_config)
    if config.get("num_classes") is None:
        head = state_dict.get(_head_key(arch))
        if head is None:
            raise ValueError(f"{source}: has no {_head_key(arch)!r} to take the class "
                             "count from; pass num_classes (and skip_head=True)")
        config["num_classes"] = int(head.shape[0])

    if arch in ARCHS_2D:
        from keras_video.models import resnet2d

        unknown = set(config) - {"num_classes", "input_shape"}
        if unknown:
            raise ValueError(f"{arch} takes num_classes and input_shape, not "
                             f"{', '.join(sorted(unknown))}")
        model = resnet2d.resnet_classifier(int(arch[6:]), config.get("input_shape", (224, 224, 3)),
                                           config["num_classes"])
        try:
            return resnet2d.load_torch_resnet_state_dict(model, state_dict, skip_head)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None

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
        if f"'{_head_key(arch)}'" in str(error) and not skip_head:
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
    return _convert(arch, state_dict, info, skip_head, model_config)


# ---------------------------------------------------------------- command line

def define_flags():
    from absl import flags

    flags.DEFINE_enum("arch", None, ARCHS, "architecture of the checkpoint")
    flags.DEFINE_string("checkpoint", None, "the PyTorch .pth file")
    flags.DEFINE_string("output", None, "where to write: FILE.weights.h5 or FILE.keras")
    flags.DEFINE_integer("num_classes", None, "class count of the Keras model (default: "
                         "the checkpoint's); another one loads all but the head")
    flags.DEFINE_enum("shortcut_type", None, ["A", "B"], "ResNet3D shortcut (default B)")
    flags.DEFINE_integer("conv1_t_size", None, "ResNet3D conv1 temporal kernel (default 7)")
    flags.DEFINE_integer("conv1_t_stride", None, "ResNet3D conv1 temporal stride (default 1)")
    flags.DEFINE_boolean("no_max_pool", None, "ResNet3D without the max-pool after conv1")
    flags.DEFINE_float("widen_factor", None, "ResNet3D channel factor (default 1.0)")
    flags.mark_flags_as_required(["arch", "checkpoint", "output"])


def main(argv):
    from absl import flags

    del argv
    f = flags.FLAGS
    if not f.output.endswith((".weights.h5", ".keras")):
        raise ValueError(f"{f.output}: --output must end with .weights.h5 or .keras")
    config = {name: f[name].value for name in ("num_classes", "shortcut_type",
                                               "conv1_t_size", "conv1_t_stride",
                                               "no_max_pool", "widen_factor")
              if f[name].value is not None}
    state_dict, info = torch_state_dict(f.checkpoint)
    if f.arch == "c3d":
        state_dict = _rename_c3d_seed_keys(state_dict)
    head = state_dict.get(_head_key(f.arch))
    file_classes = None if head is None else int(head.shape[0])
    skip_head = f.num_classes is not None and f.num_classes != file_classes
    model = _convert(f.arch, state_dict, info, skip_head, config)
    if f.output.endswith(".keras"):
        model.save(f.output)
    else:
        model.save_weights(f.output)
    classes = model.output.shape[-1]
    print(f"Converted {f.checkpoint} ({f.arch}, {len(state_dict)} tensors) -> {f.output}")
    if skip_head:
        held = "none" if file_classes is None else f"{file_classes} classes"
        print(f"Loaded every layer but the head {head_layer(model).name!r}: the checkpoint's "
              f"head has {held}, the model {classes}; the head keeps a fresh initialisation")
    else:
        print(f"Loaded every layer, the head {head_layer(model).name!r} ({classes} classes) "
              "included")
    return 0


if __name__ == "__main__":
    from keras_video import cli

    define_flags()
    cli.run(main)
