"""keras_video.runtime: the commands choose TensorFlow's oneDNN CPU kernels before
importing it, the user's setting wins, and `import keras_video` changes nothing."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from keras_video import runtime

AVX2 = frozenset({"sse4_2", "avx", "avx2", "fma"})
AVX512_VNNI = AVX2 | {"avx512f", "avx512_vnni"}


@pytest.mark.parametrize("environ,flags,machine,value", [
    ({}, AVX2, "x86_64", "1"),                        # AVX2 EPYC: TensorFlow leaves it off
    ({}, AVX2 | {"avx512f"}, "x86_64", "1"),         # AVX-512 without VNNI: also off there
    ({}, AVX512_VNNI, "x86_64", None),                # TensorFlow's default is on already
    ({}, AVX2 | {"amx_bf16", "amx_tile"}, "x86_64", None),
    ({}, frozenset({"sse4_2", "avx"}), "x86_64", None),  # no AVX2: not measured
    ({}, frozenset({"asimd"}), "aarch64", None),     # Arm: TensorFlow's own rule
    ({"TF_ENABLE_ONEDNN_OPTS": "0"}, AVX2, "x86_64", None),  # the user's setting wins
    ({"TF_ENABLE_ONEDNN_OPTS": "1"}, AVX2, "x86_64", None),
    ({}, None, "x86_64", None),                       # flags unknown
])
def test_onednn_choice(environ, flags, machine, value):
    chosen, why = runtime.onednn_choice(environ, flags or frozenset(), machine)
    assert chosen == value
    assert why
    if environ:
        assert "set by you" in why


def _python(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    environ.update(PYTHONPATH=ROOT, **env)
    return subprocess.run([sys.executable, "-c", code], env=environ, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_importing_the_package_imports_and_sets_nothing():
    result = _python("import os, sys, keras_video; "
                     "print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'), 'tensorflow' in sys.modules)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "False"]


@pytest.mark.slow
@pytest.mark.parametrize("user", [None, "0", "1"])
def test_a_command_prints_what_tensorflow_runs(user):
    env = {} if user is None else {"TF_ENABLE_ONEDNN_OPTS": user}
    result = _python("from keras_video import runtime; runtime.start()", **env)
    assert result.returncode == 0, result.stderr
    line = result.stderr.strip().splitlines()[0]
    chosen, _ = runtime.onednn_choice({}, None, None)
    expected = user or chosen
    if expected is not None:
        # The state reported is TensorFlow's own (IsMklEnabled), not the variable.
        assert line.startswith("TensorFlow ") and (
            f"oneDNN CPU kernels {'on' if expected == '1' else 'off'}" in line), line
    assert ("set by you" in line) == (user is not None), line


@pytest.mark.slow
def test_the_train_command_starts_with_the_runtime_line():
    environ = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    result = subprocess.run([sys.executable, "-m", "keras_video.train", "--experiment=nope"],
                            env={**environ, "PYTHONPATH": ROOT}, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("TensorFlow ") and "oneDNN CPU kernels" in lines[0], lines
    assert result.returncode == 2 and lines[-1].startswith("error: "), lines


@pytest.mark.slow
def test_every_command_imports_into_one_process():
    """No command defines its flags, or starts TensorFlow its own way, on import."""
    result = _python("import sys; import keras_video.commands.evaluate, keras_video.commands.predict, "
                     "keras_video.commands.train, keras_video.commands.convert, keras_video.data.generate, "
                     "keras_video.data.to_tfrecord; from absl import flags; "
                     "print(sorted(n for n in ('model_dir', 'output', 'data', 'model') "
                     "if n in flags.FLAGS))")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["[]"]
