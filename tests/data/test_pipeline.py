"""The tf.data pipeline: shapes, values, caching, TFDS, and bad samples inside it."""

import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import VIDEOS
from keras_video.commands import cli
from keras_video.tasks import evaluation
from keras_video.data import decode, sources
from keras_video.data.pipeline import ClipSpec, SkipLog, make_dataset
from keras_video.data.samples import Samples, TfdsSource


def _all(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def test_batches_equal_direct_decoding(oscillation_videos):
    samples = sources.from_spec(oscillation_videos)
    clip = ClipSpec(30, (48, 40), "first", grayscale=True)
    x, y = _all(make_dataset(samples, clip, 5, training=False))
    assert x.shape == (12, 30, 48, 40, 1) and x.dtype == np.uint8  # the model casts
    np.testing.assert_array_equal(y, samples.labels)
    direct = decode.read_clip(samples.paths[7], 30, "first", size=(48, 40), grayscale=True)
    np.testing.assert_array_equal(x[7], direct)


def test_autotuner_is_off_for_training_and_evaluation(oscillation_videos):
    """pipeline.prefetched ends both pipelines: tf.data's autotuner off (it ran whole
    epochs on one core, experiments/RESULTS.md)."""
    samples = sources.from_spec(oscillation_videos)
    clip = ClipSpec(4, (16, 16), "uniform")
    for ds in (make_dataset(samples, clip, 4, training=True),
               evaluation.video_clip_dataset(samples, clip, batch_size=4)):
        assert ds.options().autotune.enabled is False
        assert next(iter(ds))[0].shape[1:] == (4, 16, 16, 3)


def test_training_order_is_shuffled_and_crops_are_random(oscillation_videos):
    samples = sources.from_spec(oscillation_videos)
    clip = ClipSpec(4, (16, 16), "random", stride=2)
    ds = make_dataset(samples, clip, 12, training=True, seed=0)
    (x1, y1), (x2, y2) = [next(iter(ds)) for _ in range(2)]
    assert sorted(y1.numpy().tolist()) == sorted(samples.labels.tolist())
    assert not np.array_equal(y1.numpy(), samples.labels)  # shuffled
    assert not np.array_equal(x1.numpy(), x2.numpy())  # new crops each epoch


def test_cache_gives_the_same_clips(oscillation_videos, tmp_path):
    samples = sources.from_spec(oscillation_videos)
    clip = ClipSpec(8, (32, 32), "uniform")
    plain = _all(make_dataset(samples, clip, 4, training=False))
    for cache in ("memory", str(tmp_path / "cache")):
        ds = make_dataset(samples, clip, 4, training=False, cache=cache)
        for _ in range(2):  # the second pass reads the cache
            cached = _all(ds)
            np.testing.assert_array_equal(cached[0], plain[0])
    assert any(name.startswith("cache") for name in os.listdir(tmp_path))


def test_tfds_source_through_the_same_pipeline():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        source = TfdsSource("ucf101", "train")
        x, y = _all(make_dataset(source, ClipSpec(8, (32, 32)), 2, training=False))
    assert x.shape == (3, 8, 32, 32, 3) and y.dtype == np.int64


def _with_bad_video(oscillation_videos):
    samples = sources.from_spec(oscillation_videos)
    bad = os.path.join(VIDEOS, "truncated_faststart_h264.mp4")
    return Samples(samples.paths[:3] + [bad], np.append(samples.labels[:3], 1.0),
                           "regression"), bad


def test_bad_sample_error_names_the_file(oscillation_videos):
    samples, bad = _with_bad_video(oscillation_videos)
    ds = make_dataset(samples, ClipSpec(60, (16, 16), "first"), 2, training=False)
    with pytest.raises(tf.errors.OpError) as info:
        _all(ds)
    message = cli.bad_sample_message(info.value)
    assert message == (f"{bad}: truncated or corrupt: decoding stopped at frame 34 of the "
                       "75 the container declares")


def test_bad_sample_skip_logs_and_counts(oscillation_videos):
    samples, bad = _with_bad_video(oscillation_videos)
    log = SkipLog()
    x, y = _all(make_dataset(samples, ClipSpec(60, (16, 16), "first"), 2, training=False,
                             on_bad_sample="skip", skip_log=log))
    assert len(x) == 3
    assert [e.path for e in log.errors] == [bad]
