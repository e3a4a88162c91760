"""Reading torch.save files without PyTorch: the one `.pth` reader of the package.

`read_torch_file` reads both formats of torch.save (the zip archive of PyTorch >= 1.6
and the older "legacy" stream) with an unpickler that rebuilds tensors as numpy arrays,
plain containers and nothing else: no code from the file runs (unknown classes become
inert placeholders). Anything else (e.g. the pre-2018 tar format) goes to
torch.load(weights_only=True) when PyTorch is installed. `torch_state_dict` unwraps
the checkpoint dicts the published files use. Every reader of .pth files here
(`keras_video.models.pretrained`, `--pretrained`, `--backbone_weights`) goes through it.
"""

import collections
import io
import os
import pickle
import zipfile
from collections.abc import Mapping

import numpy as np

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
