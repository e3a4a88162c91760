"""Segmenting a video, or detecting its objects, frame by frame with Deep Feature Flow:
the streaming engine.

    model = keras_video.saving.load_model("dff.keras")          # a "dff" or "frame_seg" model
    engine = StreamingEngine(model, mode="dff", key_interval=10, output="labels")
    for result in engine.run(keras_video.data.decode.iter_video_frames("clip.mp4")):
        result.index, result.output, result.is_key, result.seconds

Frame i is a key frame when i % key_interval == 0. A key frame runs N_feat once and its
features stay cached (on the device) until the next key frame; it is segmented as
N_task(N_feat(frame)). Every other frame is segmented from the cached features:

    "dff"        the learned flow net: flow, scale = flow_net(frame, key frame);
                 N_task(warp(key features, flow) * scale)
    "dis"        OpenCV's DIS optical flow (Kroeger et al., ECCV 2016) from this frame to
                 the key frame on gray images, averaged down to the feature grid and
                 divided by the stride; no learned flow, scale field 1
    "per_frame"  no propagation: N_task(N_feat(frame)) on every frame (the baseline;
                 every frame counts as a key frame)

Each network step is one tf.function with a fixed input signature, traced once, so a
frame costs the network, not Python (KerasParts); the same steps run through a run's
SavedModel alone (SavedModelParts, `StreamingEngine.from_export`). The result comes
back as NumPy: probabilities [H, W, K] float32, or the arg-max label map [H, W] int32,
or for a detector (rfcn, dff_rfcn; output="detections") {"boxes" [n, 4] in pixels of
the model's input, "scores" [n], "labels" [n] (1..C)}.
`seconds` is the wall time of the whole frame after decoding: resize, optical flow
(DIS), networks and the copy back; `flow_seconds` is the DIS part of it. The first call
of each step traces it: call `warmup()` first for representative timings.

`python -m keras_video.predict --model_dir=D video.mp4 --key_interval=10` runs it on a
segmentation run.

Frames are RGB, uint8 or float in [0, 255], of any size: a frame of another size than
the model's input is resized (keras_video.data.decode.resize_frame: INTER_AREA when
shrinking, bilinear otherwise) and the output is at the model's size.
"""

import dataclasses
import time

import cv2
import numpy as np
import tensorflow as tf

from keras_video.data import decode
from keras_video.layers import FlowWarp
from keras_video.models import rfcn
from keras_video.models.dff import FEATURE_STRIDE, dff_parts, feature_stride

MODES = ("dff", "dis", "per_frame")
OUTPUTS = ("probabilities", "labels", "detections")


@dataclasses.dataclass
class FrameResult:
    index: int
    output: np.ndarray
    is_key: bool
    seconds: float
    flow_seconds: float = 0.0


def dis_flow(current_gray, key_gray, dis):
    """OpenCV DIS flow from `current` to `key` in frame pixels, [H, W, 2] (dx, dy):
    `key` sampled at (x + dx, y + dy) reconstructs `current`, FlowWarp's convention."""
    return dis.calc(np.ascontiguousarray(current_gray), np.ascontiguousarray(key_gray), None)


def flow_to_feature_grid(flow, grid_shape, stride=FEATURE_STRIDE):
    """Frame-pixel flow [H, W, 2] -> feature-pixel flow [h, w, 2] on a stride-`stride` grid.

    Feature pixel (i, j) covers frame pixels [stride i, stride (i + 1)) (the grid rounds
    up, so the last cells reach past the frame): the flow is padded by edge replication
    to (stride h, stride w) and each cell averaged (INTER_AREA on an exact integer
    factor), then divided by the stride.
    """
    h, w = grid_shape
    height, width = flow.shape[:2]
    padded = cv2.copyMakeBorder(flow, 0, stride * h - height, 0, stride * w - width,
                                cv2.BORDER_REPLICATE)
    return cv2.resize(padded, (w, h), interpolation=cv2.INTER_AREA) / np.float32(stride)


class KerasParts:
    """The engine's network steps on a Keras `dff` / `frame_seg` / `dff_rfcn` / `rfcn`
    model, each a tf.function with a fixed input signature (traced once, whatever the
    stream):

        key(frame)                            -> (features, OUT)
        propagate(frame, key_frame, features) -> OUT   (learned flow; dff models only)
        propagate_flow(features, grid_flow)   -> OUT   (a given flow, no scale)

    OUT is N_task's probabilities, or for a detector the detections of its inference
    head on N_task's maps (proposals, R-FCN voting, NMS: keras_video.models.rfcn.
    detector_of), in the same graph as the network step (one call from Python a frame):
    `jit_compile` (XLA) applies to the network steps, which it speeds up on a CPU (the
    flow net's many small layers), and to the head's arithmetic: the proposals'
    decoding and ranking (in the network's XLA cluster), PSRoI pooling and voting; not
    to its two NMS steps, which XLA cannot compile. Frames are float32 [1, H, W, 3] at
    the model's size."""

    def __init__(self, model, jit_compile=False):
        self.n_feat, self.n_flow, self.n_task = dff_parts(model)
        self.has_flow = self.n_flow is not None
        self.detection = rfcn.is_detector(model)
        self.frame_size = tuple(self.n_feat.input.shape[1:3])
        self.grid = tuple(self.n_feat.output.shape[1:3])
        self.stride = feature_stride(model)
        self._concrete = {}
        self._warp = FlowWarp(dtype=self.n_task.dtype_policy, name="stream_warp")
        frame = tf.TensorSpec([1, *self.frame_size, 3], tf.float32)
        features = tf.TensorSpec([1, *self.n_feat.output.shape[1:]], self.n_feat.output.dtype)
        grid_flow = tf.TensorSpec([1, *self.grid, 2], tf.float32)

        def compiled(fn, *signature):
            return tf.function(fn, input_signature=signature, jit_compile=jit_compile)

        if not self.detection:
            self._key_step = compiled(self._key, frame)
            self._flow_step = compiled(self._propagate_learned, frame, frame, features)
            self._dis_step = compiled(self._propagate_given, features, grid_flow)
            return
        # A detector's step is one graph: the network step and the ranking of the
        # proposals' anchors in one XLA cluster, their NMS, the PSRoI pooling and
        # voting (XLA), the per-class NMS; one call from Python a frame.
        rank, propose, score, select = rfcn.detector_stages(rfcn.detector_of(model))
        score = tf.function(score, jit_compile=jit_compile)

        def ranked(network):
            def step(*args):
                *features, maps = network(*args)
                return (*features, maps, rank(maps))
            return step

        def detect(maps, ranked_anchors):
            return select(*score(maps, propose(*ranked_anchors)), maps)

        key_net = compiled(ranked(self._key), frame)
        flow_net = compiled(ranked(lambda *args: (self._propagate_learned(*args),)),
                            frame, frame, features)
        given_net = compiled(ranked(lambda *args: (self._propagate_given(*args),)),
                             features, grid_flow)

        def key_step(frame):
            features, maps, ranked_anchors = key_net(frame)
            return features, detect(maps, ranked_anchors)

        self._key_step = tf.function(key_step, input_signature=[frame])
        self._flow_step = tf.function(lambda *args: detect(*flow_net(*args)),
                                      input_signature=[frame, frame, features])
        self._dis_step = tf.function(lambda *args: detect(*given_net(*args)),
                                     input_signature=[features, grid_flow])

    def _key(self, frame):
        features = self.n_feat(frame, training=False)
        return features, self.n_task(features, training=False)

    def _propagate_learned(self, frame, key_frame, key_features):
        flow, scale = self.n_flow([frame, key_frame], training=False)
        features = self._warp([key_features, flow]) * scale
        return self.n_task(features, training=False)

    def _propagate_given(self, key_features, flow):
        return self.n_task(self._warp([key_features, flow]), training=False)

    def _call(self, step, *args):
        # The step's one concrete function, called directly: a tf.function's own call
        # matches its arguments against its signature first, a cost paid on every frame.
        concrete = self._concrete.get(step)
        if concrete is None:
            concrete = self._concrete[step] = getattr(self, step).get_concrete_function()
        return concrete(*args)

    def key(self, frame):
        return self._call("_key_step", tf.constant(frame))

    def propagate(self, frame, key_frame, key_features):
        return self._call("_flow_step", tf.constant(frame), key_frame, key_features)

    def propagate_flow(self, key_features, grid_flow):
        return self._call("_dis_step", key_features, tf.constant(grid_flow))

    def tracing_counts(self):
        """How often each step was traced (1 each after use: nothing retraces per frame)."""
        return {name: getattr(self, name).experimental_get_tracing_count()
                for name in ("_key_step", "_flow_step", "_dis_step")}


class SavedModelParts:
    """The same steps through a segmentation run's SavedModel alone
    (keras_video.serving.export.export_dff: its feature, task, propagate and
    propagate_flow signatures), so a client needs no model code. Frames are passed as
    uint8 at the model's size."""

    def __init__(self, export_dir):
        from keras_video.serving import export

        self.meta = export.load_meta(export_dir)
        missing = {"feature", "task", "propagate_flow"} - set(self.meta["signatures"])
        if missing:
            raise ValueError(f"{export_dir}: the export lacks the signatures "
                             f"{sorted(missing)}; export the run again with this version")
        self._loaded = tf.saved_model.load(export_dir)
        self.has_flow = "propagate" in self.meta["signatures"]
        self.detection = self.meta["task"] == "detection"
        self.frame_size = tuple(self.meta["frame_size"])
        self.grid = tuple(self.meta["feature_shape"][:2])
        self.stride = int(self.meta["feature_stride"])

    @staticmethod
    def _uint8(frame):
        return tf.constant(np.clip(np.rint(frame), 0, 255).astype(np.uint8))

    def _output(self, outputs):
        return outputs if self.detection else outputs["probabilities"]

    def key(self, frame):
        features = self._loaded.feature(self._uint8(frame))["features"]
        return features, self._output(self._loaded.task(features))

    def propagate(self, frame, key_frame, key_features):
        return self._output(self._loaded.propagate(self._uint8(frame), key_features,
                                                   self._uint8(key_frame)))

    def propagate_flow(self, key_features, grid_flow):
        return self._output(self._loaded.propagate_flow(key_features,
                                                        tf.constant(grid_flow)))


class StreamingEngine:
    """Runs a DFF model (or its per-frame baseline) over a stream of frames; `model` is
    a Keras dff / frame_seg / dff_rfcn / rfcn model, or the parts of one (KerasParts,
    SavedModelParts)."""

    def __init__(self, model, mode="dff", key_interval=10, output="probabilities",
                 dis_preset=cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, jit_compile=False):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, not {output!r}")
        if int(key_interval) < 1:
            raise ValueError(f"key_interval must be at least 1, not {key_interval!r}")
        parts = model if isinstance(model, (KerasParts, SavedModelParts)) else KerasParts(
            model, jit_compile)
        if mode == "dff" and not parts.has_flow:
            raise ValueError("mode 'dff' needs a model with a flow net (build_model('dff'))")
        if (output == "detections") != parts.detection:
            raise ValueError(f"output {output!r} does not fit a "
                             f"{'detection' if parts.detection else 'segmentation'} model")
        self.parts, self.mode, self.output = parts, mode, output
        self.key_interval = 1 if mode == "per_frame" else int(key_interval)
        self.frame_size, self.grid, self.stride = parts.frame_size, parts.grid, parts.stride
        self._dis = cv2.DISOpticalFlow_create(dis_preset) if mode == "dis" else None
        self._key_frame = self._key_features = self._key_gray = None

    @classmethod
    def from_export(cls, export_dir, mode="dff", key_interval=10, output="probabilities"):
        """The engine on a segmentation run's SavedModel (no Keras model needed)."""
        return cls(SavedModelParts(export_dir), mode, key_interval, output)

    def _result(self, output):
        if self.output == "detections":  # boxes in pixels of the model's input
            count = int(output["count"].numpy()[0])
            return {name: output[name].numpy()[0, :count]
                    for name in ("boxes", "scores", "labels")}
        probabilities = output.numpy()[0]
        if self.output == "labels":
            return np.argmax(probabilities, axis=-1).astype(np.int32)
        return probabilities

    def _prepare(self, frame):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3:
            raise ValueError(f"expected an RGB frame [H, W, 3], got shape {frame.shape}")
        return decode.resize_frame(frame, self.frame_size).astype(np.float32)

    def is_key(self, index):
        return index % self.key_interval == 0

    def step(self, index, frame, flow=None):
        """Segments frame number `index` (key frames must come before their followers).

        flow: optional float [H, W, 2] flow from this frame to its key frame in frame
        pixels (FlowWarp's convention, e.g. the ground truth), used on a propagated frame
        in place of the mode's flow, with no scale field."""
        start = time.perf_counter()
        frame = self._prepare(frame)
        batch = frame[None]
        flow_seconds = 0.0
        key = self.is_key(index)
        if key:
            self._key_features, output = self.parts.key(batch)
            self._key_frame = batch
            if self._dis is not None:
                self._key_gray = cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_RGB2GRAY)
        elif self._key_features is None:
            raise RuntimeError("the first frame must be a key frame (index 0)")
        elif flow is None and self.mode == "dff":
            output = self.parts.propagate(batch, self._key_frame, self._key_features)
        else:
            flow_start = time.perf_counter()
            given = flow is not None
            if not given:
                gray = cv2.cvtColor(frame.astype(np.uint8), cv2.COLOR_RGB2GRAY)
                flow = dis_flow(gray, self._key_gray, self._dis)
            grid_flow = flow_to_feature_grid(flow, self.grid, self.stride)
            flow_seconds = 0.0 if given else time.perf_counter() - flow_start
            output = self.parts.propagate_flow(self._key_features, grid_flow[None])
        output = self._result(output)
        return FrameResult(index, output, key, time.perf_counter() - start, flow_seconds)

    def run(self, frames):
        """Yields a FrameResult per frame of the iterable `frames`, in order."""
        for index, frame in enumerate(frames):
            yield self.step(index, frame)

    def warmup(self):
        """Traces every step this mode uses (on black frames), so timings exclude it."""
        black = np.zeros((*self.frame_size, 3), np.uint8)
        for index in range(min(2, self.key_interval)):
            self.step(index, black)
        self._key_frame = self._key_features = self._key_gray = None

    def tracing_counts(self):
        """How often each network step was traced (Keras parts)."""
        return self.parts.tracing_counts()


def timing_summary(results):
    """Mean milliseconds per key frame, per other frame, and per frame overall."""
    key = [r.seconds for r in results if r.is_key]
    other = [r.seconds for r in results if not r.is_key]
    def mean_ms(values):
        return 1000 * float(np.mean(values)) if values else float("nan")

    return {"key_ms": mean_ms(key), "other_ms": mean_ms(other),
            "frame_ms": mean_ms(key + other), "frames": len(key) + len(other)}
