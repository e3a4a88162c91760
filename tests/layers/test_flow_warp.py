"""FlowWarp against a float64 NumPy reference: values, gradients, saving, XLA, float16,
and MirroredStrategy."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from keras_video.layers import FlowWarp



def reference_warp(features, flow):
    """Bilinear sampling written out point by point in float64, zeros outside."""
    features, flow = np.asarray(features, np.float64), np.asarray(flow, np.float64)
    batch, height, width, _ = features.shape
    out = np.zeros_like(features)
    for b in range(batch):
        for y in range(height):
            for x in range(width):
                px, py = x + flow[b, y, x, 0], y + flow[b, y, x, 1]
                x0, y0 = int(np.floor(px)), int(np.floor(py))
                ax, ay = px - x0, py - y0
                for xi, yi, weight in ((x0, y0, (1 - ax) * (1 - ay)), (x0 + 1, y0, ax * (1 - ay)),
                                       (x0, y0 + 1, (1 - ax) * ay), (x0 + 1, y0 + 1, ax * ay)):
                    if 0 <= xi < width and 0 <= yi < height:
                        out[b, y, x] += weight * features[b, yi, xi]
    return out


def random_case(seed, shape=(2, 7, 9, 4), max_flow=4.0):
    """Features and a flow that reaches past every border, with some points far outside
    and some landing exactly on the last row/column (the zero-fill edge cases)."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=shape)
    flow = rng.uniform(-max_flow, max_flow, (*shape[:3], 2))
    height, width = shape[1:3]
    flow[0, 0, 0] = (50.0, -80.0)  # far outside
    flow[1, 1, 2] = (-1e6, 1e6)  # very far: must not overflow the int32 index
    # (width - 0.5, height - 0.75): half in the last column, half outside
    flow[0, height - 1, 1] = (width - 2.5, 0.25)
    # (-0.5, height - 1): exactly on the last row, half left of the map
    flow[1, height - 1, width - 1] = (-(width - 1) - 0.5, 0.0)
    return features, flow


def test_zero_flow_is_the_identity():
    features, _ = random_case(0)
    out = FlowWarp()([features.astype("float32"), np.zeros((2, 7, 9, 2), "float32")])
    np.testing.assert_array_equal(out, features.astype("float32"))


def test_integer_flow_is_an_exact_shift_with_zero_fill():
    features, _ = random_case(1)
    features = features.astype("float32")
    flow = np.zeros((2, 7, 9, 2), "float32")
    flow[..., 0], flow[..., 1] = 2.0, -1.0  # out[y, x] = features[y - 1, x + 2]
    expected = np.zeros_like(features)
    expected[:, 1:, :-2] = features[:, :-1, 2:]
    np.testing.assert_array_equal(FlowWarp()([features, flow]), expected)


@pytest.mark.parametrize("seed", [2, 3])
def test_random_flow_matches_the_float64_reference(seed):
    features, flow = random_case(seed)
    expected = reference_warp(features, flow)
    out32 = FlowWarp()([features.astype("float32"), flow.astype("float32")])
    assert out32.dtype == "float32"
    np.testing.assert_allclose(out32, expected, atol=1e-5, rtol=0)
    out64 = FlowWarp(dtype="float64")([features, flow])
    np.testing.assert_allclose(out64, expected, atol=1e-12, rtol=0)
    assert np.count_nonzero(np.all(expected == 0, axis=-1)) >= 2  # points outside read zero


def test_gradients_match_central_differences():
    features, flow = random_case(4, shape=(2, 4, 5, 3), max_flow=2.5)
    # Central differences straddle a kink where a coordinate is an integer (the
    # derivative jumps there); keep fractional parts >= 0.05 away so they measure the
    # one-sided derivative the layer returns. Integer points have their own test below.
    frac = flow - np.floor(flow)
    flow = np.floor(flow) + np.clip(frac, 0.05, 0.95)
    layer = FlowWarp(dtype="float64")
    weights = np.random.default_rng(5).normal(size=features.shape)

    def loss_of_features(f):
        return tf.reduce_sum(layer([f, tf.constant(flow)]) * weights)

    def loss_of_flow(fl):
        return tf.reduce_sum(layer([tf.constant(features), fl]) * weights)

    for fn, x in ((loss_of_features, features), (loss_of_flow, flow)):
        theoretical, numerical = tf.test.compute_gradient(fn, [tf.constant(x)], delta=1e-6)
        assert np.abs(theoretical[0]).max() > 0.1
        np.testing.assert_allclose(theoretical[0], numerical[0], atol=1e-7, rtol=1e-6)


def test_flow_gradient_at_integer_positions_is_the_right_derivative():
    features = np.random.default_rng(6).normal(size=(1, 4, 5, 2))
    flow = np.zeros((1, 4, 5, 2))
    flow[0, 1, 1] = (1.0, -1.0)
    flow_t = tf.constant(flow)
    with tf.GradientTape() as tape:
        tape.watch(flow_t)
        out = FlowWarp(dtype="float64")([tf.constant(features), flow_t])
        loss = tf.reduce_sum(out[..., 0])  # channel 0 only
    grad = tape.gradient(loss, flow_t).numpy()[0]
    f = features[0, ..., 0]
    # d/dflow_x at (y, x) = f[y, x + 1] - f[y, x], with f = 0 beyond the right edge.
    right = np.concatenate([f[:, 1:], np.zeros((4, 1))], axis=1)
    below = np.concatenate([f[1:], np.zeros((1, 5))], axis=0)
    expected_x, expected_y = right - f, below - f
    # (1, 1) samples (2, 0): its derivatives are those of that point.
    expected_x[1, 1], expected_y[1, 1] = f[0, 3] - f[0, 2], f[1, 2] - f[0, 2]
    np.testing.assert_allclose(grad[..., 0], expected_x, atol=1e-12)
    np.testing.assert_allclose(grad[..., 1], expected_y, atol=1e-12)
    # The same number as a forward difference, which sees only the right side.
    step = 1e-7
    shifted = flow.copy()
    shifted[0, 2, 3, 0] += step
    difference = reference_warp(features, shifted) - reference_warp(features, flow)
    forward = difference[0, 2, 3, 0] / step
    assert forward == pytest.approx(grad[2, 3, 0], abs=1e-6)


def _model(height=None, width=None, channels=3):
    features = keras.Input((height, width, channels), name="features")
    flow = keras.Input((height, width, 2), name="flow")
    return keras.Model([features, flow], FlowWarp(name="warp")([features, flow]))


def test_config_keras_file_and_saved_model_round_trips(tmp_path):
    layer = FlowWarp(name="warp", dtype="float64")
    clone = FlowWarp.from_config(layer.get_config())
    assert clone.name == "warp" and clone.compute_dtype == "float64"

    features, flow = (a.astype("float32") for a in random_case(7, shape=(2, 6, 8, 3)))
    model = _model(channels=3)
    expected = model([features, flow]).numpy()

    model.save(tmp_path / "warp.keras")
    loaded = keras.saving.load_model(tmp_path / "warp.keras")
    assert isinstance(loaded.get_layer("warp"), FlowWarp)
    np.testing.assert_array_equal(loaded([features, flow]), expected)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", model.call, input_signature=[[
        tf.TensorSpec([None, None, None, 3], tf.float32),
        tf.TensorSpec([None, None, None, 2], tf.float32)]])
    archive.write_out(str(tmp_path / "saved"))
    restored = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_array_equal(restored.serve([features, flow]), expected)
    # Dynamic sizes: another map size through the same exported function.
    features2, flow2 = (a.astype("float32") for a in random_case(8, shape=(2, 3, 11, 3)))
    np.testing.assert_allclose(restored.serve([features2, flow2]),
                               reference_warp(features2, flow2), atol=1e-5)


def test_jit_compile_equals_eager():
    features, flow = (a.astype("float32") for a in random_case(9))
    layer = FlowWarp()
    eager = layer([features, flow]).numpy()
    compiled = tf.function(lambda f, fl: layer([f, fl]), jit_compile=True)
    # XLA fuses the weight products and the four-term sum (FMA, other order), so the
    # last bit may differ: allow a few float32 ulps of the largest feature, no more.
    ulps = 4 * np.finfo(np.float32).eps * np.abs(features).max()
    np.testing.assert_allclose(compiled(features, flow), eager, atol=ulps, rtol=0)
    # With integer flows every weight is 0 or 1 and there is nothing to round.
    integer_flow = np.round(flow)
    np.testing.assert_array_equal(compiled(features, integer_flow),
                                  layer([features, integer_flow]))


def test_float16_policy():
    features, flow = random_case(10)
    layer = FlowWarp(dtype="mixed_float16")
    out = layer([features.astype("float16"), flow.astype("float32")])
    assert out.dtype == "float16"
    # float16 features (3 significant digits) and weights: a few 1e-3 of |features| ~ 3.
    np.testing.assert_allclose(np.asarray(out, np.float64),
                               reference_warp(features.astype("float16"), flow), atol=1e-2)

    # Why coordinates stay float32: at x = 1000 float16 has steps of 0.5, so a sample
    # point 1000.25 would round to 1000.0 (or 1000.5). On a map alternating 0, 1 the
    # right answer is 0.25; the rounded coordinate would give 0 or 0.5.
    width = 1100
    stripes = (np.arange(width) % 2).astype("float16").reshape(1, 1, width, 1)
    quarter = np.zeros((1, 1, width, 2), "float32")
    quarter[..., 0] = 0.25
    out = np.asarray(layer([stripes, quarter]), np.float64)[0, 0, :, 0]
    assert out[1000] == pytest.approx(0.25, abs=1e-3)
    assert out[1001] == pytest.approx(0.75, abs=1e-3)


def test_shape_checks():
    with pytest.raises(ValueError, match="same height and width"):
        FlowWarp()([keras.Input((4, 5, 3)), keras.Input((4, 6, 2))])
    with pytest.raises(ValueError, match="flow"):
        FlowWarp()([keras.Input((4, 5, 3)), keras.Input((4, 5, 3))])


MIRRORED = r"""
import sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
import keras
from keras_video.layers import FlowWarp
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
features = rng.normal(size=(4, 5, 6, 3)).astype("float32")
flow = rng.uniform(-2, 2, (4, 5, 6, 2)).astype("float32")
with strategy.scope():
    f_in, flow_in = keras.Input((5, 6, 3)), keras.Input((5, 6, 2))
    head = keras.layers.Conv2D(2, 1)
    model = keras.Model([f_in, flow_in], head(FlowWarp()([f_in, flow_in])))
    model.compile("sgd", "mse")
history = model.fit([features, flow], np.zeros((4, 5, 6, 2), "float32"), batch_size=4,
                    epochs=2, verbose=0)
predicted = model.predict([features, flow], batch_size=4, verbose=0)

def flow_grad(f, fl):
    with tf.GradientTape() as tape:
        tape.watch(fl)
        loss = tf.reduce_sum(model([f, fl]) ** 2)
    return tape.gradient(loss, fl)

dataset = tf.data.Dataset.from_tensor_slices((features, flow)).batch(4)
batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
per_replica = tf.function(lambda b: strategy.run(flow_grad, args=b))(batch)
distributed = np.concatenate([t.numpy() for t in strategy.experimental_local_results(per_replica)])
print("replicas", strategy.num_replicas_in_sync, "shards",
      [t.shape[0] for t in strategy.experimental_local_results(per_replica)])
print("loss_finite", all(np.isfinite(history.history["loss"])))
print("predict_err", float(np.abs(predicted - model([features, flow]).numpy()).max()))
single = flow_grad(tf.constant(features), tf.constant(flow)).numpy()
print("grad_err", float(np.abs(distributed - single).max() / np.abs(single).max()))
"""


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus():
    result = subprocess.run([sys.executable, "-c", MIRRORED], cwd=ROOT, capture_output=True,
                            text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["replicas"].startswith("2 shards [2, 2]")
    assert lines["loss_finite"] == "True"
    assert float(lines["predict_err"]) < 1e-6
    assert float(lines["grad_err"]) < 1e-6  # relative to the largest gradient: float32 rounding
