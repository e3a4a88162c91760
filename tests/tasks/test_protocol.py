"""The evaluation protocols: every non-overlapping clip of a video, scores averaged per
video, 3-crop views, top-5; checked against a model whose scores are known in closed
form, and end to end through `python -m keras_video.evaluate` on a fake UCF101."""

import json
import math
import os

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_module
from keras_video.commands import cli
from keras_video.training import configs
from keras_video.tasks import evaluation
from keras_video.data import datasets, decode
from keras_video.data.pipeline import ClipSpec, SkipLog, make_dataset
from keras_video.data.sampling import video_clips
from keras_video.data.samples import Samples

NUM_CLASSES = 8
SHARPNESS = 2.0
CLIP = ClipSpec(8, (16, 16), "random", resize=(16, 24), crop="random", flip=True)


def _gray_level_model(clip):
    """Scores class k by how close the clip's mean red level m is to 30k:
    softmax_k(SHARPNESS * (k m / 30 - k^2 / 2)) = softmax_k(-SHARPNESS (k - m/30)^2 / 2)."""
    inputs = keras.Input(clip.shape)
    dense = keras.layers.Dense(NUM_CLASSES, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling3D()(inputs)))
    k = np.arange(NUM_CLASSES)
    kernel = np.zeros((clip.channels, NUM_CLASSES))
    kernel[0] = SHARPNESS * k / 30
    dense.set_weights([kernel, -SHARPNESS * k ** 2 / 2])
    return model


def _scores(mean_level):
    k = np.arange(NUM_CLASSES)
    logits = SHARPNESS * (k * mean_level / 30 - k ** 2 / 2)
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _write_frames(folder, levels):
    """Lossless frames (PNG) 16x24; levels: one gray level a frame, or a [T, 24] array
    of levels per column."""
    os.makedirs(folder)
    for t, level in enumerate(levels):
        frame = np.empty((16, 24, 3), np.uint8)
        frame[...] = np.asarray(level, np.uint8)[None, :, None] if np.ndim(level) else level
        cv2.imwrite(os.path.join(folder, f"{t:03d}.png"), frame)
    return str(folder)


@pytest.fixture(scope="module")
def gray_videos(tmp_path_factory):
    """Videos whose clips have known mean levels (T = 8):
      A label 1: 24 frames, clips at 30, 210, 30; its centre clip is the 210 one
      B label 0: 5 frames at 70, one looped clip; class 0 ranks 5th at 70
      C label 0: 20 frames at 84; class 0 ranks 6th at 84
      D label 3: 20 frames: 16 at 90, then 0, 0, 240, 240; last clip 16..19 looped (120)
      E label 4: 8 frames of columns at 30 | 120 | 210: left / centre / right crops of
                 16 columns have means 75, 120, 165
    """
    root = tmp_path_factory.mktemp("gray")
    columns = np.repeat([30, 120, 210], 8)
    paths = [_write_frames(root / "A", [30] * 8 + [210] * 8 + [30] * 8),
             _write_frames(root / "B", [70] * 5),
             _write_frames(root / "C", [84] * 20),
             _write_frames(root / "D", [90] * 16 + [0, 0, 240, 240]),
             _write_frames(root / "E", [columns] * 8)]
    return Samples(paths, np.array([1, 0, 0, 3, 4]), "classification",
                           [f"level{30 * k}" for k in range(NUM_CLASSES)])


def test_video_clips_cut_every_frame_once():
    assert video_clips(40, 8).tolist() == [list(range(i, i + 8)) for i in range(0, 40, 8)]
    assert video_clips(20, 8)[-1].tolist() == [16, 17, 18, 19, 16, 17, 18, 19]
    assert video_clips(5, 8).tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]]
    assert video_clips(20, 4, stride=2).tolist() == [[0, 2, 4, 6], [8, 10, 12, 14],
                                                     [16, 18, 16, 18]]
    assert [len(video_clips(n, 16)) for n in (1, 16, 17, 160, 161)] == [1, 1, 2, 10, 11]


def test_video_scores_are_the_mean_of_clip_scores(gray_videos):
    model = _gray_level_model(CLIP)
    labels, scores, clips = evaluation.video_scores(model, gray_videos, CLIP, "video",
                                                    batch_size=3)  # batches mix videos
    expected = [np.mean([_scores(30), _scores(210), _scores(30)], axis=0),
                _scores(70), _scores(84),
                np.mean([_scores(90), _scores(90), _scores(120)], axis=0),
                _scores(120)]  # E: the centre crop only
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert clips.tolist() == [3, 1, 3, 3, 1] and labels.tolist() == [1, 0, 0, 3, 4]

    _, three, _ = evaluation.video_scores(model, gray_videos, CLIP, "video", three_crop=True)
    expected[4] = np.mean([_scores(75), _scores(120), _scores(165)], axis=0)
    np.testing.assert_allclose(three, expected, atol=1e-6)


def test_video_and_clip_protocols_top1_top5(gray_videos):
    model = _gray_level_model(CLIP)
    video, picture = evaluation.evaluate_videos(model, gray_videos, CLIP, protocol="video",
                                                batch_size=4)
    # A (averaged: 1) and D right; B's class 0 ranks 5th (top-5 only); C's 6th; E: 4
    assert video == {"top1": 0.6, "top5": 0.8, "num_clips": 11, "num_videos": 5,
                     "views_per_clip": 1, "protocol": "video"}
    assert picture.ndim == 3 and picture.shape[-1] == 3
    clip, _ = evaluation.evaluate_videos(model, gray_videos, CLIP, protocol="clip")
    # A's centre clip (210) says 7, where class 1 ranks 7th
    assert (clip["top1"], clip["top5"], clip["num_clips"]) == (0.4, 0.6, 5)
    # the clip protocol is the pipeline's evaluation of the centre clip
    old, _ = evaluation.evaluate(model, make_dataset(gray_videos, CLIP.for_eval(), 2,
                                                     training=False), "classification")
    assert (old["top1"], old["top5"]) == (clip["top1"], clip["top5"])


def test_unreadable_videos_are_skipped_not_misaligned(gray_videos, tmp_path):
    missing = str(tmp_path / "missing")
    with_bad = Samples(gray_videos.paths[:2] + [missing] + gray_videos.paths[2:],
                               np.array([1, 0, 2, 0, 3, 4]), "classification")
    log = SkipLog()
    labels, scores, _ = evaluation.video_scores(_gray_level_model(CLIP), with_bad, CLIP,
                                                on_bad_sample="skip", skip_log=log)
    assert [e.path for e in log.errors] == [missing]
    _, clean, _ = evaluation.video_scores(_gray_level_model(CLIP), gray_videos, CLIP)
    np.testing.assert_allclose(scores, clean, atol=1e-6)
    assert labels.tolist() == [1, 0, 0, 3, 4]
    # on_bad_sample="error": the pipeline stops with the error keras_video.commands.cli prints
    with pytest.raises(tf.errors.OpError) as info:
        evaluation.video_scores(_gray_level_model(CLIP), with_bad, CLIP)
    assert cli.bad_sample_message(info.value) == f"{missing}: file does not exist"


def _colour_run(fake_ucf101, model_dir):
    """A run directory as train.py writes it, for a model that reads the mean colour
    (the fake classes are red, green and blue), trained on ucf101:PATH split 1."""
    config = configs.make_config("", dict(
        model="c3d", data=f"ucf101:{fake_ucf101}", split=1, frames=8, size=24,
        sampling="random", resize=(32, 40), crop="multiscale_corner", flip=True,
        task="classification", model_dir=str(model_dir)))
    splits = datasets.load_splits(config.data, config.runtime.seed, str(model_dir / "data"))
    clip = config.data.clip_spec()
    inputs = keras.Input(clip.shape)
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling3D()(inputs)))
    dense.set_weights([np.eye(3) / 10, np.zeros(3)])
    os.makedirs(model_dir)
    model.save(model_dir / "best.keras")
    with open(model_dir / "config.json", "w") as f:
        json.dump({"train": config.settings(), "clip": clip.to_dict(),
                   "class_names": splits.class_names, "eval_data": splits.test_spec}, f)
    return splits, clip


@pytest.mark.slow
def test_evaluate_command_video_protocol(fake_ucf101, tmp_path):
    splits, clip = _colour_run(fake_ucf101, tmp_path / "run")
    result = run_module("keras_video.evaluate", f"--model_dir={tmp_path / 'run'}",
                        "--protocol=video", "--three_crop", "--batch_size=5")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout.splitlines()[0])
    clips = sum(math.ceil(decode.count_frames(p) / clip.num_frames)
                for p in splits.test.paths)
    assert metrics == {"top1": 1.0, "top5": 1.0, "num_clips": clips, "num_videos": 6,
                       "views_per_clip": 3, "protocol": "video"}
    assert os.path.isfile(tmp_path / "run" / "eval_metrics.png")

    # a broken list: one line naming the file and the line, no traceback
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("classInd.txt", "testlist01.txt"):
        with open(os.path.join(fake_ucf101, "ucfTrainTestlist", name)) as f:
            (lists / name).write_text(f.read())
    with open(lists / "testlist01.txt", "a") as f:
        f.write("Basketball/v_Basketball_g01_c03.avi\r\n")
    result = run_module("keras_video.evaluate", f"--model_dir={tmp_path / 'run'}",
                        f"--data=ucf101:{fake_ucf101}:split1:test:lists={lists}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: {lists / 'testlist01.txt'}: line 7: Basketball/v_Basketball_g01_c03.avi "
        "is not on disk")
