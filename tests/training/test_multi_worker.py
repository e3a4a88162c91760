"""Multi-worker training (keras_video.training.distribute) with real worker processes on
127.0.0.1: two workers, each reading half of every global batch from its own shard of
the files, give the weights of one worker reading the whole batch; and after the job
is stopped and started again, BackupAndRestore resumes it where it stopped with the
same weights as a run that was never stopped.

Stopping: when a worker of a MultiWorkerMirroredStrategy job dies, the others fail on
their next collective op and the cluster manager starts the job again; here both
workers end right after epoch 1's backup (tests/multi_worker_job.py --stop_after_epoch),
as such a restart would find them.
"""

import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, TESTS

JOB = os.path.join(TESTS, "multi_worker_job.py")
TIMEOUT = 240  # seconds for each phase; the processes end by themselves well before


def _run_together(commands):
    """Starts every (args, env) at once; waits for all; kills all on failure or
    timeout. Returns the outputs."""
    procs = [subprocess.Popen([sys.executable, JOB, *args], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for args, env in commands]
    deadline = time.time() + TIMEOUT
    try:
        outputs = [p.communicate(timeout=max(1, deadline - time.time()))[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [(p.returncode, out) for p, out in zip(procs, outputs)]


def _env(tmp_dir, tf_config=None):
    # TMPDIR: the throw-away output directories of the non-chief workers land there.
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2",
           "TMPDIR": str(tmp_dir)}
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = tf_config
    return env


def _two_workers(data, out, model_dir, *extra):
    from keras_video.training.distribute import local_tf_configs

    return [(["--strategy=multi_worker", f"--data={data}", f"--out={out}{i}",
              f"--model_dir={model_dir}", *extra], _env(model_dir.parent, tf_config))
            for i, tf_config in enumerate(local_tf_configs(2))]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One worker for 2 epochs, alongside two workers stopped after epoch 1; then the
    two workers started again with the same model_dir."""
    from keras_video.data import generate

    root = tmp_path_factory.mktemp("multi_worker")
    data = generate.write_motion(str(root / "data"), 16, seed=0, frames=16, size=32,
                                 progress=False)  # 16 clips: 2 global batches of 8
    one = (["--strategy=default", f"--data={data}", f"--out={root / 'one'}",
            f"--model_dir={root / 'one_dir'}"], _env(root))
    model_dir = root / "two_dir"
    first = _run_together([one] + _two_workers(data, root / "two", model_dir,
                                               "--stop_after_epoch=1"))
    second = _run_together(_two_workers(data, root / "resumed", model_dir))
    return root, first, second


def _weights(path):
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len([k for k in f.files if k.startswith("arr_")]))]


def _assert_same_training(begin, expected, actual):
    """The weights agree to float32 rounding (a few ulp), which is far below what the
    training changed in them (end - begin)."""
    for b, e, a in zip(begin, expected, actual):
        update = np.abs(e - b).max()
        assert update > 1e-4 * np.abs(e).max()
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-3 * update)


def test_two_workers_match_one_worker(runs):
    root, first, _ = runs
    (one_rc, one_out), *workers = first
    assert one_rc == 0, one_out[-3000:]
    for i, (rc, out) in enumerate(workers):
        assert rc == 3, out[-3000:]  # stopped after epoch 1, as asked
        assert f"replicas 2 workers 2 chief {i == 0}" in out
    begin = _weights(root / "one_begin.npz")
    np.testing.assert_array_equal(_weights(root / "two0_begin.npz")[0], begin[0])
    one, chief, other = (_weights(root / f"{name}_epoch1.npz")
                         for name in ("one", "two0", "two1"))
    _assert_same_training(begin, one, chief)
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)  # the replicas stay in sync


def test_two_workers_resume_after_restart(runs):
    root, _, second = runs
    for i, (rc, out) in enumerate(second):
        assert rc == 0, out[-3000:]
        assert "epochs run 1" in out  # epoch 2 only
    begin = _weights(root / "one_begin.npz")
    np.testing.assert_array_equal(_weights(root / "resumed0_begin.npz")[3],
                                  _weights(root / "two0_epoch1.npz")[3])  # restored
    _assert_same_training(begin, _weights(root / "one_epoch2.npz"),
                          _weights(root / "resumed0_epoch2.npz"))
    with np.load(root / "one_epoch2.npz") as one, \
            np.load(root / "resumed1_epoch2.npz") as resumed:
        np.testing.assert_allclose(resumed["loss"], one["loss"], rtol=1e-5)
    assert not (root / "two_dir" / "backup").exists()  # the chief's, deleted at the end
