"""Training and evaluation crops as TensorFlow ops: the ResNet3D multi-scale corner crop,
the C3D random crop, flips, evaluation views, and their place in the pipeline."""

import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_video

from keras_video.training import configs
from keras_video.data import decode, sources, transforms
from keras_video.data.pipeline import ClipSpec, make_dataset


def _ramp_clip(num_frames, height, width):
    """uint8 frames whose pixel (y, x) of frame t is 3y + x + 5t (channel c adds 2c)."""
    y, x = np.mgrid[:height, :width]
    frames = (3 * y + x)[None, :, :, None] + 5 * np.arange(num_frames)[:, None, None, None]
    return (frames + 2 * np.arange(3)).astype(np.uint8)


def _box(clip, seed):
    return tuple(int(v) for v in transforms.crop_box(clip, tf.constant(seed, tf.int64)))


def test_multiscale_corner_crop_draws_every_scale_and_position():
    # 3D-ResNets-PyTorch's MultiScaleCornerCrop: square of int(scale * short side) at
    # the centre or a corner, scales 1, 2^-1/4, 2^-1/2, 2^-3/4, 1/2.
    clip = ClipSpec(4, (24, 24), resize=(40, 56), crop="multiscale_corner")
    sides = {int(40 * s) for s in (1, 2 ** -0.25, 2 ** -0.5, 2 ** -0.75, 0.5)}
    assert sides == {40, 33, 28, 23, 20}
    seen = set()
    for seed in range(300):
        y, x, h, w = _box(clip, seed)
        assert h == w and h in sides
        corners = {(0, 0), (0, 56 - w), (40 - h, 0), (40 - h, 56 - w),
                   ((40 - h) // 2, (56 - w) // 2)}
        assert (y, x) in corners, (y, x, h)
        seen.add((y, x, h))
    # every scale at every position; at scale 1 the square spans the height, so its
    # top and bottom corners coincide: 3 + 4 x 5 distinct boxes
    assert len(seen) == 23


def _as_pil_uint8(resized):
    """Float resize output rounded half up and saturated, as PIL's uint8 resize is."""
    return np.floor(np.clip(resized, 0, 255) + 0.5).astype(np.uint8)


def test_one_box_and_one_flip_for_every_frame():
    frames = _ramp_clip(6, 40, 56)
    clip = ClipSpec(6, (24, 24), resize=(40, 56), crop="multiscale_corner", flip=True)
    flips = set()
    for seed in range(12):
        out = transforms.apply(tf.constant(frames), clip, tf.constant(seed, tf.int64)).numpy()
        assert out.shape == (6, 24, 24, 3) and out.dtype == np.uint8
        # Resizing is linear with weights summing to 1, so the +5t of frame t survives
        # when every frame has the same box and the same flip: to within the rounding
        # to uint8 (a float sum a hair either side of .5 rounds either way).
        steps = np.broadcast_to(5 * np.arange(6)[:, None, None, None], out.shape)
        assert np.abs(out.astype(int) - out[:1] - steps).max() <= 1
        y, x, h, w = _box(clip, seed)
        resized = tf.image.resize(frames[:, y:y + h, x:x + w], (24, 24), "bilinear",
                                  antialias=True).numpy()
        expected = _as_pil_uint8(resized)
        flipped = np.array_equal(out, expected[:, :, ::-1])
        assert flipped or np.array_equal(out, expected)
        flips.add(flipped)
    assert flips == {True, False}


def test_c3d_random_crop_is_a_plain_window():
    frames = _ramp_clip(3, 32, 43)  # 128x171 scaled down by 4
    clip = ClipSpec(3, (28, 28), resize=(32, 43), crop="random")
    offsets = set()
    for seed in range(40):
        y, x, h, w = _box(clip, seed)
        assert (h, w) == (28, 28) and 0 <= y <= 4 and 0 <= x <= 15
        out = transforms.apply(tf.constant(frames), clip, tf.constant(seed, tf.int64))
        np.testing.assert_array_equal(out.numpy(), frames[:, y:y + 28, x:x + 28])
        offsets.add((y, x))
    assert len(offsets) > 20


def test_evaluation_views():
    c3d = ClipSpec(16, (112, 112), "random", resize=(128, 171), crop="random", flip=True)
    resnet = ClipSpec(16, (112, 112), "random", resize=(128, 171),
                      crop="multiscale_corner", flip=True)
    assert (c3d.for_eval().crop, c3d.for_eval().flip, c3d.for_eval().sampling) == (
        "center", False, "center")
    assert resnet.for_eval().crop == "square_center"
    frames = _ramp_clip(2, 128, 171)
    views = transforms.eval_views(tf.constant(frames), c3d.for_eval(), three_crop=True)
    assert views.shape == (3, 2, 112, 112, 3)
    for view, x in zip(views.numpy(), (0, 29, 59)):  # left, centre, right of the long side
        np.testing.assert_array_equal(view, frames[:, 8:120, x:x + 112])
    centre = transforms.eval_views(tf.constant(frames), c3d.for_eval()).numpy()
    np.testing.assert_array_equal(centre[0], views[1])
    # square_center: the largest centred square, resized (3D-ResNets' Scale + CenterCrop)
    square = transforms.eval_views(tf.constant(frames), resnet.for_eval()).numpy()[0]
    expected = tf.image.resize(frames[:, :, 21:149], (112, 112), antialias=True).numpy()
    np.testing.assert_array_equal(square, _as_pil_uint8(expected))
    # a portrait frame: the 3 crops run down its long side
    tall = ClipSpec(2, (10, 10), resize=(30, 10), crop="center")
    views = transforms.eval_views(tf.constant(_ramp_clip(2, 30, 10)), tall, True).numpy()
    np.testing.assert_array_equal(views[:, 0, :, 0, 0], [[0, 3, 6, 9, 12, 15, 18, 21, 24, 27],
                                                         [30 + 3 * i for i in range(10)],
                                                         [60 + 3 * i for i in range(10)]])
    with pytest.raises(ValueError, match="deterministic crop"):
        transforms.eval_views(tf.constant(frames), c3d)


def test_clip_spec_checks_and_train_config():
    with pytest.raises(ValueError, match="needs frames at least that large"):
        ClipSpec(4, (112, 112), resize=(100, 171), crop="center")
    with pytest.raises(ValueError, match="crop must be one of"):
        ClipSpec(4, (16, 16), crop="corner")
    config = configs.make_config("", dict(frames=16, size=112, sampling="random",
                                          resize=(128, 171), crop="random", flip=True))
    clip = config.data.clip_spec()
    assert (clip.resize, clip.crop, clip.flip, clip.decode_size) == (
        (128, 171), "random", True, (128, 171))
    assert ClipSpec(**clip.to_dict()) == clip  # what config.json / meta.json store
    assert configs.TrainConfig().data.clip_spec().decode_size == (64, 64)  # no crop by default


def test_cache_keeps_crops_random_and_seeds_reproduce(class_videos):
    samples = sources.from_spec(class_videos)
    clip = ClipSpec(4, (16, 16), "uniform", resize=(24, 32), crop="multiscale_corner",
                    flip=True)

    def epochs(cache, count=2):
        ds = make_dataset(samples, clip, 5, training=True, seed=3, cache=cache)
        return [sorted(x.numpy().tolist()) for x, _ in (next(iter(ds)) for _ in range(count))]

    first, second = epochs("memory")
    assert first != second  # the cache holds clips before their crop: new crops each epoch
    assert epochs("memory") == [first, second]  # same seed, same crops
    x, y = next(iter(make_dataset(samples, clip, 5, training=True, cache="memory")))
    assert x.shape == (5, 4, 16, 16, 3) and x.dtype == tf.uint8
    flow = ClipSpec(4, (16, 16), "random", modality="flow")
    with pytest.raises(ValueError, match="freeze the random temporal crop of optical flow"):
        make_dataset(samples, flow, 5, training=True, cache="memory")


def test_cache_of_whole_videos_keeps_the_random_temporal_crop(tmp_path):
    """With a random temporal crop the cache keeps whole videos; every clip is then a
    window of its video (stride 2, looped past the end), new each epoch, reproducible."""
    lengths = {"a": 9, "b": 14}
    for name, length in lengths.items():
        os.makedirs(tmp_path / name)
        frames = np.zeros((length, 16, 16, 3), np.uint8)
        frames[...] = (np.arange(length) * 15 + (name == "b") * 7)[:, None, None, None]
        write_video(tmp_path / name / f"{name}.avi", frames)
    samples = sources.from_spec(str(tmp_path))
    clip = ClipSpec(6, (16, 16), "random", stride=2)
    videos = {int(label): decode.read_all_frames(path, (16, 16))
              for path, label in zip(samples.paths, samples.labels)}

    def epochs(count=4):
        ds = make_dataset(samples, clip, 2, training=True, seed=5, cache="memory").repeat()
        it = iter(ds)
        return [next(it) for _ in range(count)]

    starts = set()
    for x, y in epochs():
        for frames, label in zip(x.numpy(), y.numpy()):
            video = videos[int(label)]
            span = 5 * 2 + 1  # a video shorter than that loops from frame 0
            windows = [s for s in range(max(1, len(video) - span + 1))
                       if np.array_equal(frames, video[(s + 2 * np.arange(6)) % len(video)])]
            assert windows, "a cached clip is not a window of its video"
            starts.add((int(label), windows[0]))
    assert len(starts) > 2  # the crops differ from epoch to epoch
    again = epochs()
    for (x1, y1), (x2, y2) in zip(epochs(), again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("shape,size", [
    ((48, 64, 3), (24, 32)),   # shrink by 2: INTER_AREA
    ((50, 70, 3), (32, 45)),   # shrink by a fraction
    ((24, 32, 3), (40, 50)),   # grow: INTER_LINEAR
    ((24, 32, 1), (24, 32)),   # already the size: unchanged
])
def test_resize_like_opencv_matches_decode_resize_frame(shape, size):
    """The one TensorFlow resize (SavedModel, TFRecord reader, DFF export) and the one
    NumPy resize (decode.resize_frame, OpenCV) agree to rounding."""
    frame = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    ours = transforms.resize_like_opencv(tf.constant(frame[None]), size).numpy()[0]
    theirs = decode.resize_frame(frame, size)
    theirs = theirs.reshape(*size, shape[-1]).astype(np.float32)
    assert ours.shape == (*size, shape[-1]) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, atol=1.0)  # OpenCV rounds to uint8
    assert np.mean(np.abs(ours - theirs)) < 0.3
