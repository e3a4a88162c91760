"""The commands end to end in fresh processes: train, evaluate, predict, the exported
SavedModel, clean errors, kill-and-resume, and the mirrored strategy."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, SEED_CLIPS, VIDEOS, run_module

TINY = ["--model=cnn_lstm", "--size=32", "--lstm_units=8,8", "--batch_size=8", "--quiet",
        "--seed=1"]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("run") / "osc"
    result = run_module("keras_video.train", *TINY, "--num_train=24", "--num_val=8",
                        "--num_eval=8", "--epochs=2", f"--model_dir={model_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return str(model_dir), result.stdout


def test_train_writes_everything_and_reports(trained_run):
    model_dir, stdout = trained_run
    for name in ("best.keras", "config.json", "metrics.json", "test_scatter.png",
                 "export/saved_model.pb", "export/meta.json"):
        assert os.path.exists(os.path.join(model_dir, name)), name
    assert os.listdir(os.path.join(model_dir, "logs", "train"))  # TensorBoard events
    assert os.listdir(os.path.join(model_dir, "logs", "images"))
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))["metrics"]
    assert metrics["num_clips"] == 8 and np.isfinite(metrics["rmse"])
    assert f"final metrics   : rmse={metrics['rmse']:.4f}" in stdout
    assert "SavedModel      : " in stdout and "TensorBoard     : " in stdout


def test_tensorboard_has_scalars_lr_and_images(trained_run):
    import tensorflow as tf

    model_dir, _ = trained_run
    tags = set()
    for sub in ("train", "images"):
        folder = os.path.join(model_dir, "logs", sub)
        for name in os.listdir(folder):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(folder, name)):
                tags.update(v.tag for v in event.summary.value)
    assert {"epoch_loss", "epoch_learning_rate", "input/sample_clip",
            "val/scatter"} <= tags


@pytest.mark.slow
def test_rerun_of_a_finished_run_trains_nothing(trained_run):
    model_dir, _ = trained_run
    result = run_module("keras_video.train", *TINY, f"--model_dir={model_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already holds a finished run" in result.stdout


SAVED_MODEL_CHECK = r"""
import sys, json, numpy as np, tensorflow as tf
export_dir, clips_path, out_path = sys.argv[1:]
serve = tf.saved_model.load(export_dir).signatures["serve"]
clips = np.load(clips_path)
out = {k: serve(frames=tf.constant(v))["predictions"].numpy().tolist()
       for k, v in clips.items()}
json.dump(out, open(out_path, "w"))
"""


@pytest.mark.slow
def test_saved_model_matches_keras_in_a_separate_process(trained_run, tmp_path, monkeypatch):
    from keras_video import saving
    from keras_video.data import decode, sources

    model_dir, _ = trained_run
    model = saving.load_model(os.path.join(model_dir, "best.keras"))
    meta = json.load(open(os.path.join(model_dir, "export", "meta.json")))
    rng = np.random.default_rng(0)
    at_size = rng.integers(0, 256, (3, 30, 32, 32, 3), dtype=np.uint8)
    seed = sources.from_spec(SEED_CLIPS)
    full = np.stack([decode.read_clip(p, 30, "first") for p in seed.paths])  # 224x224
    np.savez(tmp_path / "clips.npz", at_size=at_size, full=full)
    result = subprocess.run([sys.executable, "-c", SAVED_MODEL_CHECK,
                             os.path.join(model_dir, "export"), str(tmp_path / "clips.npz"),
                             str(tmp_path / "out.json")], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ""}, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.load(open(tmp_path / "out.json"))
    # Same frames at the model's size: the exported graph is the Keras model.
    gray = (at_size.astype("float32") @ np.array([0.2989, 0.587, 0.114], "float32"))[..., None]
    np.testing.assert_allclose(served["at_size"], model(gray), rtol=1e-5, atol=1e-5)
    # Full-size frames: resized inside the SavedModel as OpenCV's INTER_AREA resizes
    # fully decoded frames. (The pipeline decodes JPEG frames at reduced scale first,
    # which differs from that by JPEG rounding: bounded in test_decode.py.)
    assert meta["clip"]["grayscale"] and meta["clip"]["size"] == [32, 32]
    monkeypatch.setattr(decode, "REDUCED_JPEG", False)
    piped = np.stack([decode.read_clip(p, 30, "first", size=(32, 32), grayscale=True)
                      for p in seed.paths]).astype("float32")
    np.testing.assert_allclose(served["full"], model(piped), atol=0.02)


@pytest.mark.slow
def test_predict_and_evaluate(trained_run):
    model_dir, _ = trained_run
    clips = [os.path.join(SEED_CLIPS, "sample_1"), os.path.join(VIDEOS, "short_h264_5f.mp4")]
    result = run_module("keras_video.predict", f"--model_dir={model_dir}", *clips)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == clips
    assert all(isinstance(line["prediction"], float) for line in lines)

    result = run_module("keras_video.evaluate", f"--model_dir={model_dir}")
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated = json.loads(result.stdout.splitlines()[0])
    trained = json.load(open(os.path.join(model_dir, "metrics.json")))["metrics"]
    assert evaluated["rmse"] == pytest.approx(trained["rmse"], rel=1e-4)


@pytest.mark.slow
def test_predict_bad_input_is_one_clear_line(trained_run):
    model_dir, _ = trained_run
    bad = os.path.join(VIDEOS, "not_a_video.avi")
    result = run_module("keras_video.predict", f"--model_dir={model_dir}", bad)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {bad}: OpenCV cannot open it as a video (corrupt, truncated before its "
        "index, or not a video)")
    assert "Traceback" not in result.stderr
    result = run_module("keras_video.predict", f"--model_dir={model_dir}",
                        "--on_bad_sample=skip", bad, os.path.join(SEED_CLIPS, "sample_1"))
    assert result.returncode == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert "error" in lines[0] and "prediction" in lines[1]


@pytest.mark.slow
def test_train_on_bad_data_is_one_clear_line(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "labels.csv").write_text("path,label\nclip.avi,1.5\n")
    (data / "clip.avi").write_bytes(b"")
    result = run_module("keras_video.train", *TINY, f"--data={data}",
                        f"--model_dir={tmp_path / 'run'}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {data / 'clip.avi'}: file is empty (0 bytes)")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_decode_error_during_training_is_one_clear_line(tmp_path, oscillation_videos):
    data = tmp_path / "data"
    data.mkdir()
    rows = [f"{os.path.join(oscillation_videos, f'clip_0000{i}.avi')},1.5" for i in range(4)]
    truncated = os.path.join(VIDEOS, "truncated_faststart_h264.mp4")
    rows.append(f"{truncated},2.0")
    (data / "labels.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    result = run_module("keras_video.train", *TINY, "--frames=60", f"--data={data}",
                        "--holdout_fraction=0.2", "--epochs=1", "--cache=",
                        f"--model_dir={tmp_path / 'run'}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"error: {truncated}: truncated or corrupt")


@pytest.mark.slow
def test_killed_training_resumes(tmp_path, oscillation_videos):
    model_dir = tmp_path / "run"
    args = [sys.executable, "-m", "keras_video.train", *TINY, "--epochs=6",
            f"--data={oscillation_videos}", "--holdout_fraction=0.2",
            f"--model_dir={model_dir}"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    metadata = model_dir / "backup" / "training_metadata.json"
    deadline = time.time() + 300
    while not metadata.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert metadata.exists(), "no epoch finished before the deadline"
    assert not (model_dir / "metrics.json").exists()
    done = json.loads(metadata.read_text())["epoch"]
    assert 1 <= done < 6
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Resuming from the backup in {model_dir / 'backup'}: epoch {done} of 6" in (
        result.stdout)
    epochs_run = [line for line in result.stdout.splitlines() if line.startswith("Epoch ")]
    assert epochs_run[0] == f"Epoch {done + 1}/6" and epochs_run[-1] == "Epoch 6/6"
    assert (model_dir / "metrics.json").exists()


MIRRORED = r"""
import sys, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
from keras_video.training import trainer
from keras_video.training import configs
from keras_video.training import distribute
strategy = distribute.get_strategy("mirrored")
print("replicas", strategy.num_replicas_in_sync)
config = configs.make_config("", dict(
    strategy="mirrored", size=32, lstm_units=(8, 8), batch_size=8, epochs=2, quiet=True,
    data=sys.argv[1], holdout_fraction=0.2, model_dir=sys.argv[2]))
print("metrics", trainer.train(config))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, oscillation_videos):
    result = subprocess.run([sys.executable, "-c", MIRRORED, oscillation_videos,
                             str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": ROOT}, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replicas 2" in result.stdout
    metrics = json.load(open(tmp_path / "run" / "metrics.json"))["metrics"]
    assert np.isfinite(metrics["rmse"])
