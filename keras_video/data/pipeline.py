"""The one tf.data pipeline of every model: (path, label) -> batches of clips.

    paths, labels -> [shuffle] -> OpenCV decode + temporal sample + resize to the decode
                     size (parallel, GIL released; JPEG frames at reduced scale, see
                     keras_video.data.decode)
      or TFRecord shards -> the same in TensorFlow ops (keras_video.data.tfrecord)
                  -> [cache] -> [shuffle] -> crop + flip (TensorFlow ops, per-element
                     seeds) -> batch -> prefetch (`prefetched`: tf.data's autotuner off)

Clips come out uint8 RGB (or gray), shape [batch, T, H, W, C]: a quarter of the bytes of
float32 to batch, prefetch and copy to an accelerator; a Keras model casts its input to
float32 (its Input's dtype) before its first layer. Each model normalises its input
itself (its first layer), so training, evaluation, the exported SavedModel and
`predict` cannot disagree about normalisation; the pipeline never does.
The cache holds decoded clips before the spatial transforms (keras_video.data.transforms),
so random crops and flips stay random with a cache. With a random temporal crop it holds
every frame of each video instead, and the crop is cut from the cached video by
TensorFlow ops (keras_video.data.tfrecord.frame_indices, the same sampling rule), so
later epochs decode nothing and every epoch draws new crops. Mind the memory: a cached
video takes frames x height x width x channels bytes at the decode size.
"""

import dataclasses
import threading

import numpy as np
import tensorflow as tf
from absl import logging

from keras_video.data import decode, optical_flow, sampling, tfrecord, transforms
from keras_video.data.samples import Samples, TfdsSource


MODALITIES = ("rgb", "flow")


@dataclasses.dataclass(frozen=True)
class ClipSpec:
    """How a clip is cut from a video; saved with a model so every command agrees.

    The recipes of the papers:
      ResNet3D (Hara et al.)  ClipSpec(16, (112, 112), "random", resize=(128, 171) or
                              the frames' own size, crop="multiscale_corner", flip=True)
      C3D (Tran et al.)       ClipSpec(16, (112, 112), "random", resize=(128, 171),
                              crop="random", flip=True)
    `for_eval()` turns either into its evaluation clip: the temporal centre, the centre
    crop (square_center for multiscale_corner), no flip.

    modality "flow" (the flow stream of a two-stream network, Simonyan & Zisserman
    2014): the clip is the DIS optical flow (keras_video.data.optical_flow) of
    num_frames + 1 frames `stride` apart, computed by OpenCV at the decode size, from
    gray frames: num_frames flows, 2 channels (dx, dy), quantized to uint8 with
    `flow_bound` pixels at 0 and 255. A flip mirrors the flow and negates dx. Crops
    that resize are refused: flow in pixels would need rescaling with the frame.
    """

    num_frames: int = 30
    size: tuple = (64, 64)  # (height, width) of the clip the model reads
    sampling: str = "uniform"  # see keras_video.data.sampling
    stride: int = 1
    grayscale: bool = False
    resize: tuple = ()  # (height, width) OpenCV decodes to before the crop; (): size
    crop: str = "center"  # see keras_video.data.transforms
    flip: bool = False  # random left-right mirror
    modality: str = "rgb"  # rgb | flow
    flow_bound: float = 20.0  # flow only: pixels (at the decode size) mapped to 0 / 255

    def __post_init__(self):
        if self.sampling not in sampling.MODES:
            raise ValueError(f"sampling must be one of {sampling.MODES}, not {self.sampling!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "resize", tuple(int(s) for s in self.resize))
        if self.resize and len(self.resize) != 2:
            raise ValueError(f"resize is (height, width) or (), not {self.resize}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, not {self.modality!r}")
        if self.modality == "flow" and self.grayscale:
            raise ValueError("grayscale does not apply to modality 'flow' (its flow is "
                             "computed from gray frames, and has 2 channels)")
        if self.modality == "flow" and not self.flow_bound > 0:
            raise ValueError(f"flow_bound must be > 0 pixels, not {self.flow_bound}")
        transforms.check(self)

    @property
    def decode_size(self):
        """(height, width) of the frames OpenCV hands to the spatial transforms."""
        return self.resize or self.size

    @property
    def decoded_shape(self):
        return (self.num_frames, *self.decode_size, self.channels)

    @property
    def channels(self):
        if self.modality == "flow":
            return 2
        return 1 if self.grayscale else 3

    @property
    def frames_to_read(self):
        """Frames decoded for one clip: a flow clip of N flows needs N + 1."""
        return self.num_frames + (self.modality == "flow")

    @property
    def read_grayscale(self):
        """Whether OpenCV decodes gray frames (gray clips; flow, computed from gray)."""
        return self.grayscale or self.modality == "flow"

    def from_frames(self, frames):
        """Decoded frames uint8 [frames_to_read, h, w, C] -> the clip the model reads:
        the frames themselves, or (flow) their quantized flow [num_frames, h, w, 2]."""
        if self.modality == "flow":
            return optical_flow.quantized_flow(frames, self.flow_bound)
        return frames

    @property
    def shape(self):
        return (self.num_frames, *self.size, self.channels)

    def for_eval(self):
        """Evaluation never samples at random: the random temporal and spatial crops
        become centre crops, and nothing is flipped."""
        mode = "center" if self.sampling == "random" else self.sampling
        return dataclasses.replace(self, sampling=mode, flip=False,
                                   crop=transforms.EVAL_CROP.get(self.crop, self.crop))

    def to_dict(self):
        return dataclasses.asdict(self)


# Batches made ahead of the model: enough to hide a slow batch from the step.
PREFETCH_BATCHES = 2


def prefetched(ds):
    """The end of every input pipeline (training, evaluation, DFF pairs):
    PREFETCH_BATCHES batches ahead, tf.data's autotuner off.

    Every parallel stage asks for tf.data.AUTOTUNE, which without the autotuner is one
    call per schedulable core (tf.data's GetAutotuneDefaultParallelism: the runner
    thread pool's size, at most 16). With the autotuner on (TF 2.21), whole epochs of
    the TFRecord path ran on one of two cores, at half the clips/s, at random: in 4 to
    6 of 10 epochs, also with every map's parallelism and the prefetch fixed by hand;
    with it off, in none of 20 (experiments/RESULTS.md, input pipeline).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(PREFETCH_BATCHES).with_options(options)


class SkipLog:
    """Bad samples skipped while the pipeline runs (on_bad_sample='skip')."""

    def __init__(self):
        self._lock = threading.Lock()
        self.errors = []

    def add(self, error):
        with self._lock:
            self.errors.append(error)
        logging.warning("skipping bad sample %s", error)


def clip_reader(clip, from_array=False):
    """(item, rng) -> one clip, uint8 [T, h, w, C] at clip.decode_size (frames, or their
    flow); `item` is a path (bytes) or, from_array, the frames of a TFDS video."""
    sample = (clip.frames_to_read, clip.sampling, clip.stride)

    def read(item, rng):
        if from_array:
            frames = decode.clip_from_array(item, *sample, rng, clip.decode_size,
                                            clip.read_grayscale)
        else:
            frames = decode.read_clip(item.decode(), *sample, rng, clip.decode_size,
                                      clip.read_grayscale)
        return clip.from_frames(frames)

    return read


def video_reader(clip, from_array=False):
    """(item, rng) -> every frame of a video, uint8 [T, h, w, C] at clip.decode_size: what
    the cache keeps when the temporal crop is random (see `temporal_crop`)."""

    def read(item, rng):
        del rng  # nothing is sampled
        if from_array:
            return decode.clip_from_array(item, len(item), "first", 1, None,
                                          clip.decode_size, clip.read_grayscale)
        return decode.read_all_frames(item.decode(), clip.decode_size, clip.read_grayscale)

    return read


def temporal_crop(frames, clip, element_seed):
    """The clip's frames cut from a whole decoded video [T, h, w, C] by TensorFlow ops:
    keras_video.data.sampling's rule (short videos looped), the random start drawn
    from the element's seed."""
    index = tfrecord.frame_indices(tf.shape(frames, out_type=tf.int64)[0], clip.num_frames,
                                   clip.sampling, clip.stride, element_seed)
    return tf.ensure_shape(tf.gather(frames, index), clip.decoded_shape)


def source_dataset(source):
    """(tf.data.Dataset of (item, label), from_array) for `Samples` or a `TfdsSource`."""
    if isinstance(source, TfdsSource):
        ds, _ = source.load()
        return ds, True
    return tf.data.Dataset.from_tensor_slices((list(source.paths), source.labels)), False


def decode_stage(ds, read, shape, on_bad_sample="error", skip_log=None, seed=0,
                 deterministic=True):
    """(item, label) -> (frames uint8 of `shape`, label, seed): `read(item, rng)` runs in
    parallel numpy functions, each with a generator seeded by its element's seed.

    A BadSampleError stops the pipeline (on_bad_sample="error"; keras_video.commands.cli turns it
    into one line naming the file) or drops the element and records it in `skip_log`.
    """
    skip_log = skip_log if skip_log is not None else SkipLog()
    empty = np.zeros([0 if d is None else d for d in shape], np.uint8)

    def fn(item, element_seed):
        try:
            return read(item, np.random.default_rng(int(element_seed))), True
        except decode.BadSampleError as e:
            if on_bad_sample == "error":
                raise
            skip_log.add(e)
            return empty, False

    def decode_element(item, element_seed):
        x, label = item
        frames, ok = tf.numpy_function(fn, [x, element_seed], [tf.uint8, tf.bool],
                                       name="opencv_decode", stateful=False)
        frames.set_shape(shape)
        ok.set_shape(())
        return frames, label, element_seed, ok

    # One seed per element and epoch, so random crops are reproducible yet differ.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((ds, seeds)).map(
        decode_element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if on_bad_sample == "skip":
        ds = ds.filter(lambda frames, label, element_seed, ok: ok)
    return ds.map(lambda frames, label, element_seed, ok: (frames, label, element_seed))


def make_dataset(source, clip, batch_size, training, seed=0, cache=None,
                 on_bad_sample="error", skip_log=None, drop_remainder=False):
    """A batched tf.data.Dataset of (clips, labels).

    source: `Samples` (files on disk), `TfdsSource` or `tfrecord.TfrecordSource` (decoded
      by TensorFlow ops, keras_video.data.tfrecord; its bad samples were dealt with
      when it was written, so on_bad_sample does not apply).
    clip: `ClipSpec`; for evaluation pass `clip.for_eval()`.
    cache: None, "memory" or a directory for an on-disk cache of decoded clips. The cache
      holds clips before their spatial crop and flip, which stay random; with a random
      temporal crop it holds whole videos, and the crop is cut after it (RGB only: a
      flow clip's flow is computed at decode time, from the frames it samples).
    """
    whole_videos = bool(cache) and clip.sampling == "random"
    if whole_videos and (clip.modality != "rgb"
                         or isinstance(source, tfrecord.TfrecordSource)):
        raise ValueError(
            "a cache of decoded clips would freeze the random temporal crop of "
            f"{'TFRecord shards' if clip.modality == 'rgb' else 'optical flow'}; use no "
            "cache, or sampling='uniform', 'first' or 'center'")
    # With a cache, the first epoch's order is what every later epoch shuffles, so it is
    # kept deterministic for the fresh seeds zipped below to meet the same elements.
    shuffled = training and not cache
    if isinstance(source, tfrecord.TfrecordSource):
        ds = tfrecord.clip_dataset(source, clip, shuffled, seed)
    else:
        ds, from_array = source_dataset(source)
        if shuffled and not from_array:
            ds = ds.shuffle(len(source), seed=seed, reshuffle_each_iteration=True)
        if whole_videos:
            read, shape = video_reader(clip, from_array), (None, *clip.decoded_shape[1:])
        else:
            read, shape = clip_reader(clip, from_array), clip.decoded_shape
        ds = decode_stage(ds, read, shape, on_bad_sample, skip_log, seed,
                          deterministic=not shuffled)
    if cache:
        ds = ds.cache("" if cache == "memory" else cache)
        # The cached seeds would give every epoch the same crops and flips.
        fresh = tf.data.Dataset.random(seed=seed + 1, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, fresh)).map(
            lambda element, element_seed: (element[0], element[1], element_seed))
        if training:
            n = len(source) if isinstance(source, Samples) else 1024
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        if whole_videos:
            ds = ds.map(lambda frames, label, element_seed: (
                temporal_crop(frames, clip, element_seed), label, element_seed),
                num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda frames, label, element_seed: (
        transforms.apply(frames, clip, element_seed), label),
        num_parallel_calls=tf.data.AUTOTUNE)
    return prefetched(ds.batch(batch_size, drop_remainder=drop_remainder))
