"""Video object detection end to end on the generated ILSVRC2015-layout data: train
--model=rfcn then --model=dff_rfcn from it (on a --classes subset, its flow net
pre-trained on generated ground-truth flow), evaluate's mAP by
speed, predict's box overlay, the losses' fit of one batch, the engine's key frames
equal to the per-frame detector, and the GPU recipes for one step."""

import json
import os

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_module, small_dff_rfcn
from keras_video import saving
from keras_video.data import generate, imagenet_vid
from keras_video.serving import streaming
from keras_video.tasks import detection
from keras_video.training import configs, trainer

TINY = ["--size=64", "--frames=12", "--num_train=4", "--num_eval=1", "--det_images=4",
        "--backbone=resnet18", "--width=0.125", "--feature_width=16", "--output_stride=8",
        "--anchor_scales=1,2,4", "--epochs=1", "--steps_per_epoch=2", "--batch_size=2",
        "--quiet"]


@pytest.fixture(scope="module")
def vid_root(tmp_path_factory):
    return generate.write_vid(str(tmp_path_factory.mktemp("vid") / "ILSVRC2015"), 4, 1,
                              seed=3, frames=12, size=64, classes=3, num_det_images=4,
                              progress=False)


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    """A user's own classes: two of the three generated ones, by name and by WordNet id
    (the held-out video shows antelopes: its mAP is defined)."""
    path = tmp_path_factory.mktemp("classes") / "classes.txt"
    path.write_text(f"# the classes to detect\nantelope\n{imagenet_vid.WNIDS[2]}\n")
    return str(path)


@pytest.fixture(scope="module")
def rfcn_run(tmp_path_factory, vid_root, subset):
    model_dir = tmp_path_factory.mktemp("rfcn_run")
    result = run_module("keras_video.train", "--model=rfcn", f"--model_dir={model_dir}",
                        f"--data=imagenet_vid:{vid_root}", f"--classes={subset}", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return str(model_dir), result.stdout


@pytest.fixture(scope="module")
def dff_run(tmp_path_factory, vid_root, rfcn_run, subset):
    model_dir = tmp_path_factory.mktemp("dff_rfcn_run")
    result = run_module("keras_video.train", "--model=dff_rfcn", f"--model_dir={model_dir}",
                        f"--data=imagenet_vid:{vid_root}", f"--classes={subset}",
                        f"--feature_init={rfcn_run[0]}",
                        "--freeze_feature", "--flow_width=0.125", "--eval_key_intervals=1,4",
                        "--flow_pretrain_steps=2", "--flow_pretrain_clips=2", *TINY)
    assert result.returncode == 0, result.stderr[-3000:]
    return str(model_dir), result.stdout


@pytest.mark.slow
def test_rfcn_and_dff_rfcn_train_evaluate_and_export(rfcn_run, dff_run):
    with open(os.path.join(rfcn_run[0], "metrics.json")) as f:
        per_frame = json.load(f)["metrics"]
    with open(os.path.join(dff_run[0], "metrics.json")) as f:
        metrics = json.load(f)["metrics"]
    assert {"map_k1", "map_slow_k1", "map_medium_k1", "map_fast_k1", "fps_k1"} <= set(
        per_frame)
    assert {"map_k1", "map_k4", "fps_k4"} <= set(metrics)
    # N_feat and N_task are the per-frame run's, fixed: at key interval 1 every frame is
    # a key frame, so DFF's detections, and its mAP, are the per-frame detector's.
    assert metrics["map_k1"] == pytest.approx(per_frame["map_k1"], abs=1e-9)
    with open(os.path.join(dff_run[0], "export", "meta.json")) as f:
        meta = json.load(f)
    assert meta["task"] == "detection" and meta["model"] == "dff_rfcn"
    # --classes: the two classes of the file, in its order, and only they are scored.
    assert meta["class_names"] == ["antelope", "bear"]
    assert meta["wnids"] == [imagenet_vid.WNIDS[1], imagenet_vid.WNIDS[2]]
    assert np.isfinite(metrics["map_k1"])
    assert sorted(meta["signatures"]) == ["feature", "per_frame", "propagate",
                                          "propagate_flow", "task"]
    assert "key interval 4  : mAP" in dff_run[1]
    # The flow net was pre-trained on ground-truth flow first, and measured held out.
    assert os.path.isfile(os.path.join(dff_run[0], "flow_pretrain.weights.h5"))
    assert metrics["flow_val_zero_epe"] > 0 and np.isfinite(metrics["flow_val_epe"])
    assert os.path.isfile(os.path.join(dff_run[0], "test_detections.png"))


@pytest.mark.slow
def test_evaluate_prints_vid_map_by_speed(dff_run):
    model_dir, _ = dff_run
    output = os.path.join(model_dir, "eval.json")
    result = run_module("keras_video.evaluate", f"--model_dir={model_dir}",
                        "--key_intervals=4", f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "motion [0.9 1.0] slow: Mean AP@0.5" in result.stdout
    assert "motion [0.0 0.7] fast: Mean AP@0.5" in result.stdout
    with open(output) as f:
        evaluated = json.load(f)
    with open(os.path.join(model_dir, "metrics.json")) as f:
        trained = json.load(f)["metrics"]
    assert evaluated["map_k4"] == pytest.approx(trained["map_k4"], abs=1e-9)


@pytest.mark.slow
def test_evaluate_videos_uses_a_given_flow_on_propagated_frames(dff_run, vid_root):
    """given_flow (the benchmark's true-flow ceiling) is asked for every propagated frame
    and its key frame, and nothing else; a zero flow keeps the key frame's detections."""
    model_dir, _ = dff_run
    with open(os.path.join(model_dir, "config.json")) as f:
        wnids = tuple(json.load(f)["wnids"])
    model = saving.load_model(os.path.join(model_dir, "best.keras"), compile=False)
    records = imagenet_vid.read_image_sets(vid_root, "VID_val_videos")
    asked = []

    def zero_flow(record, t, key):
        asked.append((record.video, t, key))
        return np.zeros((64, 64, 2), np.float32)

    results, _ = detection.evaluate_videos(model, records, wnids, (4,), given_flow=zero_flow)
    assert asked == [(r.video, t, t - t % 4) for r in records for t in range(r.num_frames)
                     if t % 4]
    assert np.isfinite(results["map_k4"])
    engine = streaming.StreamingEngine(model, "dff", 4, output="detections")
    frames = [detection.read_frame(records[0].image_path(i)) for i in range(2)]
    key = engine.step(0, frames[0]).output
    held = engine.step(1, frames[1], flow=np.zeros((64, 64, 2), np.float32)).output
    for name in ("boxes", "scores", "labels"):
        np.testing.assert_allclose(held[name], key[name], atol=1e-5)


@pytest.mark.slow
def test_predict_writes_the_box_overlay_and_detections(dff_run, vid_root, tmp_path):
    model_dir, _ = dff_run
    record = imagenet_vid.read_list(os.path.join(vid_root, "ImageSets", "VID_val_videos.txt"))[0]
    video = str(tmp_path / "val.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for index in range(record.num_frames):
        writer.write(cv2.imread(record.image_path(index)))
    writer.release()
    out, dets = str(tmp_path / "boxes.mp4"), str(tmp_path / "dets.jsonl")
    result = run_module("keras_video.predict", f"--model_dir={model_dir}", video,
                        "--key_interval=4", f"--output={out}", f"--detections={dets}",
                        "--min_score=0")
    assert result.returncode == 0, result.stderr[-3000:]
    line = json.loads(result.stdout.splitlines()[-1])
    assert line["frames"] == 12 and line["key_frames"] == 3 and line["mode"] == "dff"
    with open(dets) as f:
        frames = [json.loads(text) for text in f]
    assert [f["frame"] for f in frames] == list(range(12))
    assert [f["key"] for f in frames] == [i % 4 == 0 for i in range(12)]
    classes = {"antelope", "bear"}
    for frame in frames:
        for found in frame["detections"]:
            x1, y1, x2, y2 = found["box"]
            assert 0 <= x1 <= x2 <= 63 and 0 <= y1 <= y2 <= 63
            assert found["class"] in classes and 0 <= found["score"] <= 1
    capture = cv2.VideoCapture(out)
    written = 0
    while capture.read()[0]:
        written += 1
    assert written == 12


@pytest.mark.slow
def test_an_unknown_class_is_one_line_naming_the_file(tmp_path, vid_root):
    classes = tmp_path / "classes.txt"
    classes.write_text("n02691156\nunicorn\n")
    result = run_module("keras_video.train", "--model=rfcn", f"--model_dir={tmp_path / 'r'}",
                        f"--data=imagenet_vid:{vid_root}", f"--classes={classes}", *TINY)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: {classes}:2: unknown class 'unicorn'")


def _small_config(vid_root, model, **extra):
    return configs.make_config("", dict(
        model=model, data=f"imagenet_vid:{vid_root}", size=64, backbone="resnet18",
        width=0.125, feature_width=16, output_stride=8, anchor_scales=(1, 2, 4),
        batch_size=2, **extra))


def test_the_losses_fit_one_batch(vid_root, tmp_path):
    """The targets, the proposals, PSRoI pooling and the losses are wired right: 40
    steps on one fixed batch drive every loss well down (from random weights)."""
    config = _small_config(vid_root, "rfcn", lr=1e-3)
    task = detection.VideoDetection(config, tf.distribute.get_strategy(), str(tmp_path),
                                    str(tmp_path))
    keras.utils.set_random_seed(0)
    model = task.build_model()
    fitted = detection.DetectionTraining(model, ohem=True, seed=0)
    fitted.compile(optimizer=keras.optimizers.Adam(1e-3))
    x, y = next(iter(task._dataset(task.splits.train, training=False)))
    first = fitted.test_on_batch(x, y, return_dict=True)
    for _ in range(40):
        fitted.train_on_batch(x, y)
    last = fitted.test_on_batch(x, y, return_dict=True)
    for name in ("rpn_cls_loss", "rcnn_cls_loss", "loss"):
        assert last[name] < 0.5 * first[name], (name, first, last)
    assert all(np.isfinite(v) for v in last.values())


def test_engine_key_frames_are_the_per_frame_detector(vid_root):
    """A dff_rfcn model in the streaming engine: key frames give exactly the per-frame
    detector's detections (N_feat and N_task of the same weights); the frames between
    are propagated, and differ once the flow is not zero."""
    model = small_dff_rfcn(1)
    record = imagenet_vid.read_list(os.path.join(vid_root, "ImageSets", "VID_val_videos.txt"))[0]
    frames = [detection.read_frame(record.image_path(i)) for i in range(8)]
    parts = streaming.KerasParts(model)
    engine = streaming.StreamingEngine(parts, "dff", 4, output="detections")
    per_frame = streaming.StreamingEngine(parts, "per_frame", 1, output="detections")
    differs = 0
    for r, p in zip(engine.run(frames), per_frame.run(frames)):
        if r.is_key:
            for name in ("boxes", "scores", "labels"):
                np.testing.assert_array_equal(r.output[name], p.output[name])
        else:
            differs += not (len(r.output["scores"]) == len(p.output["scores"]) and np.allclose(
                r.output["scores"], p.output["scores"]))
    assert differs > 0


@pytest.mark.parametrize("experiment", ["ilsvrc_rfcn_r101", "ilsvrc_dff_rfcn_r101"])
def test_gpu_recipe_runs_one_step(experiment, vid_root, tmp_path):
    """The real-ILSVRC2015 recipes (experiments/dff_detection/README.md) run one step on
    the generated layout: every setting kept but the model's and the run's size."""
    # The ImageNet .pth file is the user's download (BUILD.md), so none here.
    overrides = dict(data=f"imagenet_vid:{vid_root}", resize=(64, 96), backbone="resnet18",
                     backbone_weights="none", width=0.125, feature_width=16, batch_size=1,
                     epochs=1, steps_per_epoch=1, quiet=True,
                     model_dir=str(tmp_path / "run"), data_dir=str(tmp_path / "data"))
    if configs.EXPERIMENTS[experiment]["model"] == "dff_rfcn":
        overrides["flow_width"] = 0.125  # the recipe's full-width FlowNet: a model size
    recipe = configs.EXPERIMENTS[experiment]
    config = configs.make_config(experiment, overrides)
    assert (config.optimization.lr, config.optimization.lr_step_epochs) == (2.5e-4, 1.333)
    assert config.detection.ohem and config.detection.anchor_scales == (8, 16, 32)
    assert config.model.name == recipe["model"]
    results = trainer.train(config)
    assert "map_k1" in results
