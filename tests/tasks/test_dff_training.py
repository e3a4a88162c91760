"""DFF training end to end (train --model=dff in a subprocess), the (current, key) pair
sampling, the mIoU function, predict's overlay video and the export's signatures."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT, run_module
from keras_video.tasks import dff_training
from keras_video.data import decode

TINY = ["--size=64", "--frames=12", "--num_train=2", "--num_val=1", "--num_eval=1",
        "--backbone=resnet18", "--width=0.125", "--feature_width=16", "--output_stride=8",
        "--epochs=1", "--steps_per_epoch=2", "--batch_size=2", "--quiet"]


@pytest.fixture(scope="module")
def frame_run(tmp_path_factory):
    """A tiny per-frame model, and the data folder the DFF run shares with it."""
    model_dir = tmp_path_factory.mktemp("frame_run")
    data_dir = tmp_path_factory.mktemp("data")
    result = run_module("keras_video.train", "--model=frame_seg", f"--model_dir={model_dir}",
                        f"--data_dir={data_dir}", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return str(model_dir), str(data_dir)


@pytest.fixture(scope="module")
def dff_run(tmp_path_factory, frame_run):
    """The benchmark's recipe in small: N_feat and N_task from the per-frame run, fixed;
    the flow net pre-trained on fresh clips, then trained end to end."""
    model_dir = tmp_path_factory.mktemp("dff_run")
    result = run_module(
        "keras_video.train", "--model=dff", f"--model_dir={model_dir}",
        f"--data_dir={frame_run[1]}", f"--feature_init={frame_run[0]}", "--freeze_feature",
        "--flow_width=0.125", "--flow_pretrain_steps=2", "--flow_pretrain_clips=2",
        "--eval_key_intervals=1,5", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return str(model_dir), result.stdout


@pytest.mark.slow
def test_evaluate_scores_a_dff_run_as_training_did(dff_run):
    """`evaluate` on a segmentation run: the streaming engine's held-out mIoU at the key
    intervals asked for, equal to training's own figure at the same interval."""
    model_dir, _ = dff_run
    output = os.path.join(model_dir, "eval_k5.json")
    result = run_module("keras_video.evaluate", f"--model_dir={model_dir}",
                        "--key_intervals=5", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(output) as f:
        evaluated = json.load(f)
    with open(os.path.join(model_dir, "metrics.json")) as f:
        trained = json.load(f)["metrics"]
    assert set(evaluated) == {"miou_k5", "fps_k5"}
    assert evaluated["miou_k5"] == pytest.approx(trained["miou_k5"], abs=1e-6)


def _test_clip(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        eval_data = json.load(f)["eval_data"]
    return os.path.join(eval_data, "clip_00000", "frames.avi")


def test_train_dff_end_to_end(dff_run, frame_run):
    model_dir, stdout = dff_run
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)["metrics"]
    with open(os.path.join(frame_run[0], "metrics.json")) as f:
        per_frame = json.load(f)["metrics"]
    # N_feat and N_task are the per-frame model's, kept fixed: at key interval 1 every
    # frame is a key frame, so DFF's held-out mIoU is the per-frame model's on the same
    # test videos.
    assert metrics["miou_k1"] == pytest.approx(per_frame["miou"], abs=1e-6)
    assert metrics["fps_k1"] > 0 and metrics["fps_k5"] > 0
    # Flow pre-training ran and reported its held-out error next to zero flow's (the
    # test videos move, so zero flow errs), and the flow net's own error is another.
    assert metrics["flow_val_zero_epe"] > 0 and np.isfinite(metrics["flow_pretrain_epe"])
    assert np.isfinite(metrics["flow_val_epe"])
    assert metrics["flow_val_epe"] != metrics["flow_val_zero_epe"]
    assert os.path.isfile(os.path.join(model_dir, "flow_pretrain.weights.h5"))
    assert os.path.isfile(os.path.join(model_dir, "best.keras"))
    with open(os.path.join(model_dir, "export", "meta.json")) as f:
        meta = json.load(f)
    assert meta["task"] == "segmentation" and meta["model"] == "dff"
    assert sorted(meta["signatures"]) == ["feature", "per_frame", "propagate",
                                          "propagate_flow", "task"]
    events = [n for _, _, files in os.walk(os.path.join(model_dir, "logs")) for n in files
              if n.startswith("events")]
    assert len(events) >= 2  # the scalars (train / validation) and the overlay images
    assert "final metrics   : miou_k1=" in stdout


def test_fixed_feature_network_keeps_key_frames_equal_to_the_per_frame_model(frame_run,
                                                                             dff_run):
    import keras

    from keras_video.serving import streaming
    from keras_video.models.dff import dff_parts

    frame_seg = keras.saving.load_model(os.path.join(frame_run[0], "best.keras"),
                                        compile=False)
    dff = keras.saving.load_model(os.path.join(dff_run[0], "best.keras"), compile=False)
    for index in (0, 2):  # N_feat, N_task: as the per-frame run left them
        for ours, theirs in zip(dff_parts(dff)[index].weights,
                                dff_parts(frame_seg)[index].weights):
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    # ... while the flow net did train.
    assert any(np.any(w.numpy() != 0) for w in dff.get_layer("flow_net")
               .get_layer("predict_flow").weights)
    frames = np.stack(list(decode.iter_video_frames(_test_clip(dff_run[0]))))
    per_frame = streaming.StreamingEngine(frame_seg, "per_frame", output="probabilities")
    engine = streaming.StreamingEngine(dff, "dff", 5, output="probabilities")
    for expected, result in zip(per_frame.run(frames), engine.run(frames)):
        if result.is_key:
            np.testing.assert_array_equal(result.output, expected.output)


def test_flow_pairs_and_schedule_pairs():
    from keras_video.data import moving_shapes
    from keras_video.serving.streaming import flow_to_feature_grid

    spec = moving_shapes.SegmentationSpec(height=48, width=64, num_frames=16)
    frames, pairs, flows = dff_training.flow_pairs(
        moving_shapes.sample_metas(3, 5, spec), 5, (6, 8), 8, frames_per_clip=4)
    assert frames.shape == (12, 48, 64, 3) and frames.dtype == np.uint8
    assert pairs.shape == (18, 2) and flows.shape == (18, 6, 8, 2)  # 6 pairs a clip
    assert np.all(pairs[:, 1] < pairs[:, 0]) and np.all(pairs[:, 0] // 4 == pairs[:, 1] // 4)
    # The flow of a pair is the ground truth between its two frames, on the grid: find
    # the frame numbers back by rendering (JPEG changes pixels by a few levels only).
    meta = next(moving_shapes.sample_metas(1, 5, spec))
    rendered = np.stack([moving_shapes.render_frame(meta, t) for t in range(16)])
    times = [int(np.argmin(np.abs(rendered - f.astype(float)).mean(axis=(1, 2, 3))))
             for f in frames[:4]]
    assert times == sorted(times) and times[-1] - times[0] <= 9
    expected = flow_to_feature_grid(moving_shapes.flow_between(meta, times[1], times[0]),
                                    (6, 8), 8)
    np.testing.assert_allclose(flows[0], expected, atol=1e-5)

    pairs = dff_training.schedule_pairs(2, 12, 5)
    assert len(pairs) == 2 * 12 - 2 * 3  # key frames 0, 5, 10 left out
    assert np.all(pairs[:, 2] == pairs[:, 1] - pairs[:, 1] % 5)


def _pairs(dataset, batches):
    keys, currents = [], []
    for i, (x, _) in enumerate(dataset):
        if i == batches:
            break
        # Frame (clip c, t) is filled with the value 50 c + t: the pixels tell the index.
        currents.append(x["current"].numpy()[:, 0, 0, 0])
        keys.append(x["key"].numpy()[:, 0, 0, 0])
    return np.concatenate(currents).astype(int), np.concatenate(keys).astype(int)


def test_pair_sampling_key_within_nine_frames_before_clipped():
    num_clips, num_frames = 2, 12
    values = 50 * np.arange(num_clips)[:, None] + np.arange(num_frames)[None]
    frames = np.broadcast_to(values[:, :, None, None, None],
                             (num_clips, num_frames, 2, 2, 3)).astype(np.uint8)
    masks = np.broadcast_to(values[:, :, None, None] % 4,
                            (num_clips, num_frames, 2, 2)).astype(np.uint8)
    dataset = dff_training.pair_dataset(frames, masks, 8, key_range=9, training=True, seed=3)
    current, key = _pairs(dataset, 60)
    assert np.array_equal(current // 50, key // 50)  # the key frame is from the same video
    t, k = current % 50, key % 50
    offset = t - k
    assert offset.min() == 0 and offset.max() == 9
    assert np.all(k >= 0) and np.all(k <= t)
    # Clipping: frames t < 9 get key 0 for every offset that would reach before the video.
    early = t < 9
    assert np.all(offset[early] <= t[early])
    assert np.any(k[early] == 0) and np.any(offset[~early] == 9)
    assert set(offset[t >= 9]) == set(range(10))  # every offset occurs where it can
    _, labels = next(iter(dataset))
    assert labels.dtype.name == "int32" and labels.shape == (8, 2, 2)

    # Validation: every frame once, key = the schedule's key frame at interval 10.
    val = dff_training.pair_dataset(frames, masks, 5, key_range=9, training=False)
    current, key = _pairs(val, 100)
    assert np.array_equal(current, values.ravel())
    assert np.array_equal(key % 50, (current % 50) // 10 * 10)

    # With the features of a fixed N_feat, each example carries its key frame's.
    features = np.broadcast_to(values[:, :, None, None, None],
                               (num_clips, num_frames, 1, 1, 2)).astype(np.float16)
    dataset = dff_training.pair_dataset(frames, masks, 8, key_range=9, training=True, seed=3,
                                        features=features)
    x, _ = next(iter(dataset))
    assert x["key_features"].dtype.name == "float32"
    np.testing.assert_array_equal(x["key_features"].numpy()[:, 0, 0, 0], x["key"].numpy()[:, 0, 0, 0])


def test_mean_iou_against_a_hand_computation():
    truth = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    predicted = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 1])
    confusion = dff_training.confusion_matrix(truth, predicted, 3)
    # class 0: 3 right, 1 missed, 2 false -> 3 / 6; class 1: 4 / (4 + 2 + 1);
    # class 2 occurs nowhere and is left out of the mean.
    iou = dff_training.iou_per_class(confusion)
    np.testing.assert_allclose(iou[:2], [0.5, 4 / 7])
    assert np.isnan(iou[2])
    assert dff_training.mean_iou(confusion) == pytest.approx((0.5 + 4 / 7) / 2)
    # A class predicted but never true counts, with IoU 0.
    confusion = dff_training.confusion_matrix([0, 0, 1], [0, 2, 1], 3)
    assert dff_training.mean_iou(confusion) == pytest.approx((0.5 + 1 + 0) / 3)


@pytest.mark.slow
def test_predict_writes_the_overlay_video(dff_run, tmp_path):
    model_dir, _ = dff_run
    video, out = _test_clip(model_dir), str(tmp_path / "overlay.mp4")
    result = run_module("keras_video.predict", f"--model_dir={model_dir}", video,
                        "--key_interval=5", f"--output={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    line = json.loads(result.stdout.splitlines()[-1])
    assert line["frames"] == 12 and line["key_frames"] == 3 and line["fps"] > 0
    capture = cv2.VideoCapture(out)
    written = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        written.append(frame)
    assert len(written) == 12 and written[0].shape == (64, 64, 3)
    # Key frames (0, 5, 10) carry a white border, the others do not.
    border = [float(np.mean(f[0, :, :])) for f in written]
    assert min(border[i] for i in (0, 5, 10)) > 200
    assert max(b for i, b in enumerate(border) if i not in (0, 5, 10)) < 200

    # The export alone (no best.keras beside it) serves every mode, DIS included.
    export_only = shutil.copytree(os.path.join(model_dir, "export"), tmp_path / "export")
    result = run_module("keras_video.predict", f"--model_dir={export_only}", video,
                        "--key_interval=5", "--mode=dis")
    assert result.returncode == 0, result.stderr[-3000:]
    line = json.loads(result.stdout.splitlines()[-1])
    assert line["frames"] == 12 and line["mode"] == "dis"

    result = run_module("keras_video.predict", f"--model_dir={model_dir}",
                        str(tmp_path / "missing.avi"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'missing.avi'}: file does not exist")


CLIENT = """
import sys
import numpy as np
import tensorflow as tf
export_dir, frames_path, interval, out = sys.argv[1:]
frames = np.load(frames_path)
loaded = tf.saved_model.load(export_dir)
feature = loaded.signatures["feature"]
propagate = loaded.signatures["propagate"]
per_frame = loaded.signatures["per_frame"]
scheduled, single = [], []
for i, frame in enumerate(frames):
    batch = tf.constant(frame[None])
    if i % int(interval) == 0:
        key_frame, key_features = batch, feature(frame=batch)["features"]
        scheduled.append(per_frame(frame=batch)["probabilities"].numpy()[0])
    else:
        scheduled.append(propagate(frame=batch, key_features=key_features,
                                   key_frame=key_frame)["probabilities"].numpy()[0])
    single.append(per_frame(frame=batch)["probabilities"].numpy()[0])
np.savez(out, scheduled=np.stack(scheduled), single=np.stack(single))
"""


@pytest.mark.slow
def test_export_signatures_reproduce_the_engine(dff_run, tmp_path):
    import keras

    from keras_video.serving import streaming

    model_dir, _ = dff_run
    frames = np.stack(list(decode.iter_video_frames(_test_clip(model_dir))))[:7]
    np.save(tmp_path / "frames.npy", frames)
    result = subprocess.run(
        [sys.executable, "-c", CLIENT, os.path.join(model_dir, "export"),
         str(tmp_path / "frames.npy"), "3", str(tmp_path / "client.npz")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    client = np.load(tmp_path / "client.npz")

    model = keras.saving.load_model(os.path.join(model_dir, "best.keras"), compile=False)
    engine = streaming.StreamingEngine(model, "dff", 3, output="probabilities")
    expected = np.stack([r.output for r in engine.run(frames)])
    np.testing.assert_allclose(client["scheduled"], expected, rtol=1e-5, atol=1e-5)
    engine = streaming.StreamingEngine(model, "per_frame", output="probabilities")
    expected = np.stack([r.output for r in engine.run(frames)])
    np.testing.assert_allclose(client["single"], expected, rtol=1e-5, atol=1e-5)
    # The schedule matters: propagated frames differ from per-frame ones somewhere, or
    # the first comparison above could not tell the two signatures apart.
    assert not np.allclose(client["scheduled"][[1, 2, 4, 5]], client["single"][[1, 2, 4, 5]],
                           atol=1e-6)
