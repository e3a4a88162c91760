"""keras_video.run_dir: atomic writes, and training killed with SIGKILL at random
instants (some during a checkpoint write) resumes, ends and leaves a best model that
loads."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT
from keras_video import run_dir


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "metrics.json"
    run_dir.write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with run_dir.atomic_path(path) as temporary:
            assert os.path.dirname(temporary) == str(tmp_path)
            assert temporary.endswith(".json")
            with open(temporary, "w") as f:
                f.write('{"a": ')  # half written
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]  # no temporary left behind


def test_replace_folder_swaps_in_a_complete_folder(tmp_path):
    target = tmp_path / "export"

    def write(content):
        def writer(folder):
            (open(os.path.join(folder, "meta.json"), "w")).write(content)
        return writer

    run_dir.replace_folder(write("1"), target)
    run_dir.replace_folder(write("2"), target)
    assert (target / "meta.json").read_text() == "2"

    def failing(folder):
        write("3")(folder)
        raise OSError("disk full")

    with pytest.raises(OSError):
        run_dir.replace_folder(failing, target)
    assert (target / "meta.json").read_text() == "2"
    assert sorted(os.listdir(tmp_path)) == ["export"]


def test_missing_run_files_are_named():
    with pytest.raises(FileNotFoundError, match="nowhere/config.json: missing"):
        run_dir.RunDir("nowhere").read_config()
    with pytest.raises(FileNotFoundError, match="nowhere/best.keras: missing"):
        run_dir.RunDir("nowhere").load_best_model()


TINY = ["--model=cnn_lstm", "--size=32", "--lstm_units=8,8", "--batch_size=4", "--quiet",
        "--seed=1", "--epochs=6", "--holdout_fraction=0.2"]
# What a checkpoint write leaves while it runs (run_dir.atomic_path's temporaries).
WRITING = ("/.best.*.tmp.keras", "/backup/.latest.*.tmp.weights.h5",
           "/.best.*.tmp.keras.json", "/backup/.training_metadata.*.tmp.json")


def _writing(model_dir):
    return any(glob.glob(str(model_dir) + pattern) for pattern in WRITING)


@pytest.mark.slow
def test_training_killed_at_random_instants_resumes_and_ends(tmp_path, oscillation_videos):
    model_dir = tmp_path / "run"
    args = [sys.executable, "-m", "keras_video.train", *TINY,
            f"--data={oscillation_videos}", f"--model_dir={model_dir}"]
    env = {**os.environ, "PYTHONPATH": ROOT}
    rng = np.random.default_rng(7)
    kills = []  # (how, epochs in the backup afterwards)
    for attempt in range(4):
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # Half the kills land during a checkpoint write, the others at a random instant
        # after the first epoch could have started.
        during_write = attempt % 2 == 0
        deadline = time.time() + (120 if during_write else rng.uniform(8, 16))
        while proc.poll() is None and time.time() < deadline:
            if during_write and _writing(model_dir):
                break
            time.sleep(0.002)
        if proc.poll() is not None:
            break  # the run finished before this kill
        seen_writing = _writing(model_dir)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append(("during a write" if seen_writing else "at random",
                      run_dir.read_json(str(model_dir / "backup" / "training_metadata.json"))
                      ["epoch"] if (model_dir / "backup" / "training_metadata.json").exists()
                      else 0))
    assert any(how == "during a write" for how, _ in kills), kills
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, (kills, result.stderr[-3000:])
    metrics = run_dir.RunDir(str(model_dir)).finished_metrics()
    assert metrics is not None and np.isfinite(metrics["metrics"]["rmse"]), kills
    model = run_dir.RunDir(str(model_dir)).load_best_model()
    clips = np.zeros((1, *model.input_shape[1:]), np.float32)
    assert np.all(np.isfinite(model.predict(clips, verbose=0)))
    assert not glob.glob(str(model_dir) + "/**/*.tmp*", recursive=True)
    # Epochs never went backwards: each run resumed from the backup the last one left.
    epochs = [epoch for _, epoch in kills]
    assert epochs == sorted(epochs), kills
