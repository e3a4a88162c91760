"""TensorFlow Lite export: the SavedModel's uint8-in serving function as a .tflite file.

    convert(model, clip=clip)                  -> bytes   a clip model's `serve`
    convert(model, part="feature")             -> bytes   one part of a dff / frame_seg
    TFLiteModel(path)(frames=uint8 clips)      -> {"predictions": scores}

What is converted is keras_video.serving.export's own serving function (`serving_fn`
for clip models; `_frames_to_model` and the parts for DFF, as `export_dff` composes
them), so the .tflite file takes what the SavedModel takes, uint8 RGB frames (a flow
model: its quantized flow), and does the same preprocessing inside (gray conversion,
the evaluation crop). One difference: the frame size is fixed, at the clip's decode
size (a DFF part: the model's frame size), the size `predict` decodes clips to. With
the size known the SavedModel's resize is the identity, which the converter folds
away. The batch stays free: `TFLiteModel` resizes the input tensors to the batch it
is given (the interpreter allocates batch 1 until told otherwise).

Every model family converts to TensorFlow Lite builtin ops only, its float32 outputs
within 1e-4 of the Keras model's (tests/serving/test_tflite.py, which also states the
float16 errors). What each piece needed:

  builtin as it is   Conv3D (CONV_3D), Conv2D (dilated: SPACE_TO_BATCH_ND), Conv2D-
                     Transpose, Dense, 2D pooling, ZeroPadding, Permute (5D TRANSPOSE),
                     keras_video's BatchNormalization (FusedBatchNormV3 in inference
                     mode, folded into MUL / ADD), ImageNormalization, FrameDifference,
                     SpatialSoftArgmax (SOFTMAX, FULLY_CONNECTED), FlowWarp (FLOOR,
                     GATHER, SELECT_V2), rgb_to_grayscale, the crops (STRIDED_SLICE)
  MaxPooling3D       no MAX_POOL_3D builtin: the converter names MaxPool3D a Select TF
                     op. Rewritten: the layer's own route (keras_video.layers.conv3d)
                     of a 2D max-pool of every frame, then one over time; the same
                     maxima. (CONV_3D is a builtin.)
  LSTM               Keras's LSTM is a while loop over TensorList ops, which the
                     converter lowers to builtins only for a fixed batch ("requires
                     element_shape to be static"). Rewritten: `serving_copy` unrolls it
                     (unroll=True: the same cell and weights, a Python loop over the
                     clip's known frame count); the batch stays free.
  BilinearUpsample   its einsum converts, but with a free batch the converter writes a
                     tensor of shape [-1, ...] that the interpreter refuses to load
                     ("invalidly specified in schema"). Rewritten: the same two matrix
                     products as `matrix_along` (FULLY_CONNECTED).
  resizes            no area or antialiased resize builtin (ResizeArea, ScaleAndTranslate;
                     the latter in the square_center evaluation crop of the 3D ResNets'
                     multiscale recipe). Rewritten: `resize_as_matmuls`, the op's own
                     separable weights as two matrix products.
The rewrites apply while the serving function is traced (`_builtin_routes`); the Keras
model and its layers are not changed.

An op still without a builtin (a future layer or backbone) is detected from the
converter's error, which names the ops. `select_tf_ops="auto"` (the default) then
converts that model, and only it, again with SELECT_TF_OPS (TensorFlow's own kernels)
and logs a warning naming the ops; `select_tf_ops=False` raises ValueError instead.
Never silently: such a file needs a TensorFlow Lite runtime with the Flex delegate,
which the `tensorflow` package's interpreter (2.21) does not link, so `TFLiteModel`
refuses it with the ops named.

Quantization (`quantize`):
  "none"      float32 weights and arithmetic.
  "float16"   weights stored as float16 (half the file), computed in float32 on a CPU:
              only the weights are rounded (relative 2^-11).
  "int8"      post-training quantization: weights int8 and activations int8 with
              ranges from a representative dataset, the `calibration_clips` (uint8
              examples as the function takes them: clips, or a DFF part's frames).
              The input stays uint8 and the output float32. Ops without an int8 kernel
              stay float32 between QUANTIZE / DEQUANTIZE: CONV_3D is one, so a 3D CNN
              keeps its convolutions (and nearly its size) in float32, and only its
              fully connected layers shrink. Its accuracy is an experiment, not a
              guarantee: measure it on held-out data.

Not thread-safe: `_builtin_routes` swaps module attributes during a conversion.
"""

import contextlib
import dataclasses
import os
import re
import tempfile

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from keras_video import run_dir
from keras_video.layers import BilinearUpsample, FlowWarp, conv3d
from keras_video.models.dff import dff_parts
from keras_video.serving import export

SIGNATURE = "serve"
QUANTIZE = ("none", "float16", "int8")
DFF_PARTS = ("feature", "per_frame", "propagate")
# The converter's error lists the ops it would need from TensorFlow on this line.
_SELECT_OPS = re.compile(r"TF Select ops: ([^\n]+)")
_TF_RESIZE = tf.image.resize  # TensorFlow's, also while _builtin_routes replaces it


@dataclasses.dataclass
class Servable:
    """A uint8-in serving function with static frame sizes, ready to convert:
    `function(**inputs) -> {name: tensor}`, its input TensorSpecs (named), the Keras
    model it serves, what it is (for messages), and the layers whose weights it reads
    (default: the model; a DFF part reads only its sub-models')."""

    function: object
    input_signature: list
    model: object
    name: str
    reads: list = None


def _is_mixed(policy):
    name = getattr(policy, "name", policy)
    return isinstance(name, str) and name.startswith("mixed_")


def serving_copy(model):
    """`model`, or a copy of it (same weights) that TensorFlow Lite's builtins can run:
    every LSTM unrolled (its builtins run an unrolled LSTM at any batch size, Keras's
    loop only at a fixed one; see the module docstring), and a mixed-precision model
    computing in float32 (TensorFlow Lite has no bfloat16 kernels, and a bfloat16 graph
    converts to Select TF ops only; the weights are float32 under mixed precision)."""
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    if not any((isinstance(layer, keras.layers.LSTM) and not layer.unroll)
               or _is_mixed(layer.dtype_policy) for layer in layers):
        return model
    config = model.get_config()

    def rewrite(node):
        if isinstance(node, dict):
            if node.get("class_name") == "LSTM" and not node["config"].get("unroll"):
                node["config"]["unroll"] = True
            if node.get("class_name") == "DTypePolicy" and _is_mixed(
                    node["config"].get("name")):
                node["config"]["name"] = "float32"
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)

    rewrite(config)
    copy = model.__class__.from_config(config)
    copy.set_weights(model.get_weights())
    return copy


def _axis_matrix(in_size, out_size, method, antialias):
    """[out_size, in_size] float32: tf.image.resize along one axis, as a matrix (the
    resize of each unit vector; its other axis keeps size 1, where every method
    used here is the identity)."""
    with tf.init_scope():  # computed once, eagerly: a constant of the traced graph
        eye = tf.reshape(tf.eye(in_size), [in_size, in_size, 1, 1])
        columns = _TF_RESIZE(eye, (out_size, 1), method, antialias=antialias)
        return tf.transpose(tf.reshape(columns, [in_size, out_size])).numpy()


def matrix_along(x, matrix, axis):
    """`matrix` [m, n] (numpy) applied along `axis` of a 4D tensor whose size there is
    n (to m): a transpose, a 2D matrix product (FULLY_CONNECTED in TensorFlow Lite)
    and the transpose back. TensorFlow Lite's conversion of the same product as an
    einsum ([m, n] with [b, n, w, c] and a free b) writes a tensor of shape
    [-1, ...] into the file, which its interpreter then refuses to load ("Tensor ...
    is invalidly specified in schema"; TensorFlow 2.21)."""
    perm = [i for i in range(4) if i != axis] + [axis]
    moved = tf.transpose(x, perm)
    shape = tf.shape(moved)
    matrix = np.asarray(matrix)
    product = tf.matmul(tf.reshape(moved, [-1, matrix.shape[1]]),
                        tf.constant(matrix.T, dtype=x.dtype))
    product = tf.reshape(product, tf.concat([shape[:3], [matrix.shape[0]]], 0))
    out = tf.transpose(product, np.argsort(perm).tolist())
    static = list(x.shape)
    static[axis] = matrix.shape[0]
    out.set_shape(static)
    return out


def resize_as_matmuls(images, size, method="bilinear", antialias=False):
    """tf.image.resize of [N, h, w, C] images of known h, w by the "bilinear" or "area"
    method (antialiased or not) as two matrix products: these resizes are separable
    linear maps (a weight per row times a weight per column), so the matrices are the
    op's own weights. TensorFlow Lite has RESIZE_BILINEAR (no antialiasing) but no
    area or antialiased resize (tf.raw_ops.ResizeArea, ScaleAndTranslate). float32
    out, as tf.image.resize."""
    height, width = images.shape[1:3]
    x = tf.cast(images, tf.float32)
    x = matrix_along(x, _axis_matrix(height, size[0], method, antialias), 1)
    return matrix_along(x, _axis_matrix(width, size[1], method, antialias), 2)


def _upsample_call(self, inputs):
    """BilinearUpsample.call with its two matrix products as `matrix_along` (its
    einsum meets the converter's einsum problem above)."""
    x = matrix_along(inputs, self._rows.astype(self.compute_dtype), 1)
    return matrix_along(x, self._cols.astype(self.compute_dtype), 2)


@contextlib.contextmanager
def _builtin_routes():
    """While tracing a servable, the rewrites of ops TensorFlow Lite has no builtin
    for, or converts wrongly (see the module docstring): MaxPooling3D takes its 2D
    route; BilinearUpsample is `_upsample_call`; tf.image.resize of 4D images of
    known size by "bilinear" or "area" is `resize_as_matmuls` (the preprocessing's
    area shrink, and the antialiased resize of a square_center crop); any other
    resize stays TensorFlow's."""
    saved = (conv3d.use_2d_max_pools, _TF_RESIZE, BilinearUpsample.call)

    def resize(images, size, method="bilinear", preserve_aspect_ratio=False,
               antialias=False, name=None):
        images = tf.convert_to_tensor(images)
        if (images.shape.rank == 4 and None not in images.shape[1:3]
                and method in ("bilinear", "area") and not preserve_aspect_ratio
                and all(isinstance(s, int) for s in size)):
            return resize_as_matmuls(images, size, method, antialias)
        return _TF_RESIZE(images, size, method, preserve_aspect_ratio, antialias, name)

    conv3d.use_2d_max_pools = lambda: True
    tf.image.resize = resize
    BilinearUpsample.call = _upsample_call
    try:
        yield
    finally:
        conv3d.use_2d_max_pools, tf.image.resize, BilinearUpsample.call = saved


def clip_servable(model, clip):
    """The SavedModel's `serve` (export.serving_fn) of a clip model, on frames at the
    clip's decode size (a flow model: its quantized flow)."""
    spec = export.input_signature(clip)
    shape = [None, clip.num_frames, *clip.decode_size, spec.shape[-1]]
    return Servable(export.serving_fn(serving_copy(model), clip),
                    [tf.TensorSpec(shape, tf.uint8, name="frames")], model,
                    f"{model.name} serve")


def dff_servable(model, part):
    """One of DFF's SavedModel signatures (export.export_dff) on frames at the model's
    frame size: "feature", "per_frame", or "propagate" (dff models only)."""
    if part not in DFF_PARTS:
        raise ValueError(f"part must be one of {', '.join(DFF_PARTS)}, not {part!r}")
    n_feat, n_flow, n_task = dff_parts(model)
    size = tuple(n_feat.input.shape[1:3])
    frame = tf.TensorSpec([None, *size, 3], tf.uint8, name="frame")

    def feature(frame):
        return {"features": n_feat(export._frames_to_model(frame, size), training=False)}

    def per_frame(frame):
        features = n_feat(export._frames_to_model(frame, size), training=False)
        return {"probabilities": n_task(features, training=False)}

    if part == "feature":
        return Servable(feature, [frame], model, f"{model.name} feature", [n_feat])
    if part == "per_frame":
        return Servable(per_frame, [frame], model, f"{model.name} per_frame",
                        [n_feat, n_task])
    if n_flow is None:
        raise ValueError(f"{model.name} has no flow net: it has no 'propagate' part")
    warp = FlowWarp(name="export_warp")

    def propagate(frame, key_features, key_frame):
        current = export._frames_to_model(frame, size)
        key = export._frames_to_model(key_frame, size)
        flow, scale = n_flow([current, key], training=False)
        features = warp([key_features, flow]) * scale
        return {"probabilities": n_task(features, training=False)}

    features = tf.TensorSpec([None, *n_feat.output.shape[1:]], tf.float32,
                             name="key_features")
    key = tf.TensorSpec([None, *size, 3], tf.uint8, name="key_frame")
    return Servable(propagate, [frame, features, key], model, f"{model.name} propagate",
                    [n_flow, n_task])


def parts_of(model):
    """The DFF parts a dff / frame_seg model exports (frame_seg has no propagate)."""
    return [p for p in DFF_PARTS if p != "propagate" or dff_parts(model)[1] is not None]


def is_dff(model):
    """Whether `model` is a dff / frame_seg model (its parts are exported separately)."""
    names = {layer.name for layer in model.layers}
    return {"feature_net", "task_net"} <= names


def _representative(servable, calibration):
    """The representative dataset of int8 quantization: one example a step, each input
    by name. Clips (or DFF frames) as the function takes them; propagate pairs every
    frame with the first one as its key frame, with the key features the model's."""
    names = [spec.name for spec in servable.input_signature]
    calibration = [np.asarray(x) for x in calibration]
    if not calibration:
        raise ValueError("int8 quantization needs calibration clips; got none")

    def dataset():
        if names == ["frame", "key_features", "key_frame"]:
            n_feat = dff_parts(servable.model)[0]
            key = calibration[0][None]
            size = tuple(n_feat.input.shape[1:3])
            key_features = n_feat(export._frames_to_model(key, size), training=False)
            for frame in calibration:
                yield {"frame": frame[None], "key_features": key_features.numpy(),
                       "key_frame": key}
            return
        (name,) = names
        for x in calibration:
            yield {name: x[None].astype(servable.input_signature[0].dtype.as_numpy_dtype)}

    return dataset


def _converter(saved_model, quantize, calibration, servable, select_tf_ops):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model,
                                                         signature_keys=[SIGNATURE])
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(servable, calibration)
    return converter


def select_ops_needed(error):
    """The TensorFlow ops a converter error says have no builtin, or [] (another
    error)."""
    match = _SELECT_OPS.search(str(error))
    return sorted({op.strip() for op in match.group(1).split(",")}) if match else []


def convert(model_or_export, quantize="none", calibration_clips=None, *, clip=None,
            part=None, select_tf_ops="auto"):
    """The .tflite file (bytes) of a Servable, or of a Keras model's serving function:
    a clip model with its evaluation `clip` (ClipSpec), or `part` of a dff /
    frame_seg model (DFF_PARTS). `quantize`: one of QUANTIZE; "int8" needs
    `calibration_clips` (uint8, one example each, as the function takes them).
    `select_tf_ops`: "auto" converts with Select TF ops when builtins do not suffice,
    logging which ops need them; False raises ValueError naming them instead."""
    if quantize not in QUANTIZE:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE)}, not {quantize!r}")
    if quantize == "int8" and calibration_clips is None:
        raise ValueError("int8 quantization needs calibration_clips")
    servable = model_or_export
    if not isinstance(servable, Servable):
        if part is not None:
            servable = dff_servable(model_or_export, part)
        elif clip is not None:
            servable = clip_servable(model_or_export, clip)
        else:
            raise ValueError("convert a Keras model with clip= (a clip model) or part= "
                             "(a dff / frame_seg model)")
    with tempfile.TemporaryDirectory(prefix="tflite_") as folder:
        with _builtin_routes():  # the graph is traced when it is written
            archive = keras.export.ExportArchive()
            for layer in servable.reads or [servable.model]:
                archive.track(layer)
            archive.add_endpoint(SIGNATURE, servable.function,
                                 input_signature=servable.input_signature)
            archive.write_out(folder, verbose=False)
        try:
            return _converter(folder, quantize, calibration_clips, servable,
                              select_tf_ops=False).convert()
        except Exception as error:  # the converter's ConverterError, or an op lowering
            needed = select_ops_needed(error)
            if not needed:
                raise
            if select_tf_ops != "auto":
                raise ValueError(
                    f"{servable.name}: TensorFlow Lite has no builtin for "
                    f"{', '.join(needed)}; convert with select_tf_ops='auto' to use "
                    "TensorFlow's kernels (Select TF ops) for them") from None
        logging.warning("%s: TensorFlow Lite has no builtin for %s: this model is "
                        "converted with Select TF ops (TensorFlow's kernels; its runtime "
                        "needs the Flex delegate)", servable.name, ", ".join(needed))
        return _converter(folder, quantize, calibration_clips, servable,
                          select_tf_ops=True).convert()


def model_ops(content):
    """The op names of a .tflite model (bytes): builtins by name, Select TF ops as
    "Flex<Op>"."""
    interpreter = tf.lite.Interpreter(model_content=content)
    return sorted({d["op_name"] for d in interpreter._get_ops_details()})


def write(content, path):
    """Writes .tflite bytes to `path` atomically (run_dir.atomic_path); returns its
    size on disk in bytes."""
    with run_dir.atomic_path(path) as temporary:
        with open(temporary, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
    return os.path.getsize(path)


class TFLiteModel:
    """Runs a .tflite file of this module with the call of the SavedModel signature it
    came from: `model(frames=uint8 clips [B, T, H, W, C])` -> {"predictions": scores
    [B, ...]} (a DFF part: its inputs, e.g. frame / key_features / key_frame, and
    outputs); a clip without the batch axis is taken as batch 1. Input tensors are
    resized to the batch given (the file's batch axis is free); frame sizes are the
    file's (the clip's decode size), and another size is an error naming it."""

    def __init__(self, path, num_threads=None):
        self.path = path
        self.interpreter = tf.lite.Interpreter(model_path=path, num_threads=num_threads)
        flex = [d["op_name"] for d in self.interpreter._get_ops_details()
                if d["op_name"].startswith("Flex")]
        if flex:
            raise ValueError(
                f"{path} needs Select TF ops ({', '.join(sorted(set(flex)))}): the "
                "tensorflow package's interpreter has no Flex delegate; run it with a "
                "TensorFlow Lite runtime that links one")
        runner = self.interpreter.get_signature_runner(SIGNATURE)
        self.inputs = {name: d for name, d in runner.get_input_details().items()}
        self.outputs = {name: d for name, d in runner.get_output_details().items()}
        del runner  # it holds the interpreter's tensors, which resizing needs free
        self.interpreter.allocate_tensors()
        self._shapes = {name: tuple(d["shape"]) for name, d in self.inputs.items()}

    def input_shape(self, name=None):
        """The shape an input takes, None for a free axis (the batch)."""
        details = self.inputs[name or next(iter(self.inputs))]
        return tuple(None if n < 0 else int(n) for n in details["shape_signature"])

    def __call__(self, *args, **inputs):
        if args:
            if len(args) != 1 or len(self.inputs) != 1 or inputs:
                raise TypeError("pass one positional input, or every input by name")
            inputs = {next(iter(self.inputs)): args[0]}
        if set(inputs) != set(self.inputs):
            raise ValueError(f"{self.path}: takes inputs {sorted(self.inputs)}, got "
                             f"{sorted(inputs)}")
        arrays = {}
        for name, value in inputs.items():
            details = self.inputs[name]
            value = np.asarray(value)
            expected = self.input_shape(name)
            if value.ndim == len(expected) - 1:
                value = value[None]
            if value.ndim != len(expected) or any(
                    e is not None and e != n for e, n in zip(expected[1:], value.shape[1:])):
                shown = tuple("B" if e is None else e for e in expected)
                raise ValueError(f"{self.path}: input {name!r} takes shape {shown}, got "
                                 f"{value.shape}")
            arrays[name] = value.astype(details["dtype"], copy=False)
        changed = {name: value.shape for name, value in arrays.items()
                   if self._shapes.get(name) != value.shape}
        for name, shape in changed.items():
            self.interpreter.resize_tensor_input(self.inputs[name]["index"], shape,
                                                 strict=True)
        if changed:
            self.interpreter.allocate_tensors()
            self._shapes.update(changed)
        for name, value in arrays.items():
            self.interpreter.set_tensor(self.inputs[name]["index"], value)
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(d["index"])
                for name, d in self.outputs.items()}
