"""The streaming engine: key-frame schedule, equality with the per-frame and training
models, DIS optical flow on a known translation, compile-once, video input."""

import cv2
import keras
import numpy as np
import pytest

from conftest import perturbed_dff, write_video
from keras_video.serving import streaming
from keras_video.data import decode
from keras_video.layers import FlowWarp
from keras_video.models import build_model, dff

SIZE = (48, 64, 3)  # feature grid 3 x 4


@pytest.fixture(scope="module")
def model():
    """A small DFF model as if after some training (as in test_dff): flow and scale
    heads off their zero initialisation, so propagated frames differ from per-frame
    ones, and larger feature / classifier weights, so probabilities are far from
    uniform and the equality checks below compare outputs that really vary."""
    keras.utils.set_random_seed(0)
    return perturbed_dff(build_model("dff", num_classes=3, input_shape=SIZE, width=0.125,
                                     feature_width=16))


@pytest.fixture(scope="module")
def frames():
    """Seven frames of a textured scene panning right by 2 pixels a frame."""
    rng = np.random.default_rng(2)
    scene = cv2.GaussianBlur(rng.uniform(0, 255, (SIZE[0], SIZE[1] + 20, 3)), (0, 0), 2)
    return [scene[:, 2 * t:2 * t + SIZE[1]].astype(np.uint8) for t in range(7)]


def _per_frame(model, frame):
    return dff.per_frame_model(model)(np.asarray(frame, np.float32)[None]).numpy()[0]


def test_key_frame_schedule(model, frames):
    engine = streaming.StreamingEngine(model, "dff", key_interval=3)
    results = list(engine.run(frames))
    assert [r.index for r in results] == list(range(7))
    assert [r.is_key for r in results] == [True, False, False, True, False, False, True]
    baseline = streaming.StreamingEngine(model, "per_frame", key_interval=3)
    assert all(r.is_key for r in baseline.run(frames[:3]))
    assert all(r.seconds > 0 for r in results)


def test_dff_mode_matches_per_frame_on_key_frames_and_the_training_model_between(
        model, frames):
    engine = streaming.StreamingEngine(model, "dff", key_interval=3)
    results = list(engine.run(frames))
    for r in results:
        per_frame = _per_frame(model, frames[r.index])
        if r.is_key:
            np.testing.assert_allclose(r.output, per_frame, atol=1e-5, rtol=0)
        else:
            key = frames[r.index - r.index % 3]
            expected = model({"current": np.float32(frames[r.index])[None],
                              "key": np.float32(key)[None]}).numpy()[0]
            np.testing.assert_allclose(r.output, expected, atol=1e-5, rtol=0)
            assert np.abs(r.output - per_frame).max() > 0.05  # propagated, not recomputed
    # Seven frames, two traced functions, each traced once.
    assert engine.tracing_counts() == {"_key_step": 1, "_flow_step": 1, "_dis_step": 0}


@pytest.mark.parametrize("mode", ["dff", "dis", "per_frame"])
def test_key_interval_one_is_per_frame(model, frames, mode):
    engine = streaming.StreamingEngine(model, mode, key_interval=1)
    for r in engine.run(frames[:3]):
        assert r.is_key
        np.testing.assert_allclose(r.output, _per_frame(model, frames[r.index]), atol=1e-5,
                                   rtol=0)


def _texture(shape, seed):
    rng = np.random.default_rng(seed)
    return np.clip(cv2.GaussianBlur(rng.uniform(0, 255, shape), (0, 0), 1.5) * 3 - 255,
                   0, 255).astype(np.uint8)


def test_dis_flow_recovers_a_translation():
    texture = _texture((200, 240), seed=3)
    key = texture[40:168, 40:200]
    current = texture[40 - 3:168 - 3, 40 + 5:200 + 5]  # current(x, y) = key(x + 5, y - 3)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = streaming.dis_flow(current, key, dis)
    interior = flow[16:-16, 16:-16].reshape(-1, 2)
    np.testing.assert_allclose(np.median(interior, axis=0), (5.0, -3.0), atol=0.1)
    assert np.mean(np.linalg.norm(interior - (5.0, -3.0), axis=1) < 0.5) > 0.95
    # and warping the key frame by that flow reconstructs the current frame
    warped = FlowWarp()([np.float32(key)[None, ..., None], flow[None]]).numpy()[0, ..., 0]
    error = np.abs(warped - current)[16:-16, 16:-16]
    assert np.median(error) < 2.0


def test_flow_to_feature_grid():
    constant = np.zeros((48, 64, 2), np.float32)
    constant[..., 0], constant[..., 1] = 8.0, -4.0
    np.testing.assert_allclose(streaming.flow_to_feature_grid(constant, (3, 4)),
                               np.broadcast_to((0.5, -0.25), (3, 4, 2)), rtol=1e-6)
    # A ramp flow_x = x averages to the cell centre 16 j + 7.5; on a 40-wide frame the
    # last cell (x 32..47) repeats column 39 for x >= 40: (32 + ... + 39 + 8 * 39) / 16.
    ramp = np.zeros((32, 40, 2), np.float32)
    ramp[..., 0] = np.arange(40)
    grid = streaming.flow_to_feature_grid(ramp, (2, 3))
    np.testing.assert_allclose(grid[0, :, 0], np.array([7.5, 23.5, 37.25]) / 16, rtol=1e-6)


def test_dis_mode_warps_key_features_by_the_dis_flow(model, frames):
    engine = streaming.StreamingEngine(model, "dis", key_interval=4)
    results = list(engine.run(frames[:4]))
    n_feat, _, n_task = dff.dff_parts(model)
    key_features = n_feat(np.float32(frames[0])[None])
    gray = lambda f: cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)  # noqa: E731
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    for r in results[1:]:
        flow = streaming.flow_to_feature_grid(
            streaming.dis_flow(gray(frames[r.index]), gray(frames[0]), dis), engine.grid)
        # frame t at x shows what the key frame shows at x + 2 t: dx = 2 t frame pixels
        assert np.median(flow[..., 0]) == pytest.approx(2 * r.index / 16, abs=0.02)
        expected = n_task(FlowWarp()([key_features, flow[None]])).numpy()[0]
        np.testing.assert_allclose(r.output, expected, atol=1e-5, rtol=0)
        assert r.flow_seconds > 0
    np.testing.assert_allclose(results[0].output, _per_frame(model, frames[0]), atol=1e-5)


def test_given_flow_replaces_the_mode_flow(model, frames):
    """A flow passed to step() (e.g. the ground truth) is warped by as DIS flow is: on the
    feature grid, no scale field, in any mode; key frames ignore it."""
    engine = streaming.StreamingEngine(model, "dff", key_interval=4)
    n_feat, _, n_task = dff.dff_parts(model)
    key_features = n_feat(np.float32(frames[0])[None])
    for t in range(4):
        flow = np.zeros((*SIZE[:2], 2), np.float32)
        flow[..., 0] = 2 * t  # the pan: frame t at x shows the key frame at x + 2 t
        result = engine.step(t, frames[t], flow)
        if t == 0:
            np.testing.assert_allclose(result.output, _per_frame(model, frames[0]), atol=1e-5)
            continue
        grid_flow = streaming.flow_to_feature_grid(flow, engine.grid)
        expected = n_task(FlowWarp()([key_features, grid_flow[None]])).numpy()[0]
        np.testing.assert_allclose(result.output, expected, atol=1e-5, rtol=0)
        assert result.flow_seconds == 0.0


def test_labels_output_resizing_and_video_input(model, frames, tmp_path):
    # Frames twice the model's size, through an MJPG file decoded by OpenCV.
    big = [cv2.resize(f, (128, 96), interpolation=cv2.INTER_LINEAR) for f in frames[:4]]
    path = write_video(tmp_path / "clip.avi", np.stack(big))
    decoded = list(decode.iter_video_frames(path))
    assert len(decoded) == 4 and decoded[0].shape == (96, 128, 3)

    probs = streaming.StreamingEngine(model, "dff", key_interval=2)
    labels = streaming.StreamingEngine(model, "dff", key_interval=2, output="labels")
    for p, lab in zip(probs.run(decoded), labels.run(decoded)):
        assert p.output.shape == (48, 64, 3) and lab.output.shape == (48, 64)
        assert lab.output.dtype == np.int32
        np.testing.assert_array_equal(lab.output, np.argmax(p.output, axis=-1))
    shrunk = cv2.resize(decoded[0], (64, 48), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(next(probs.run(decoded[:1])).output, _per_frame(model, shrunk),
                               atol=1e-5)


def test_frame_seg_model_and_bad_arguments(model):
    baseline = build_model("frame_seg", num_classes=3, input_shape=SIZE, width=0.125,
                           feature_width=16)
    with pytest.raises(ValueError, match="flow net"):
        streaming.StreamingEngine(baseline, "dff")
    engine = streaming.StreamingEngine(baseline, "dis", key_interval=2)
    engine.warmup()
    assert len(list(engine.run(np.zeros((3, *SIZE), np.uint8)))) == 3
    with pytest.raises(ValueError, match="mode"):
        streaming.StreamingEngine(model, "optical")
    with pytest.raises(RuntimeError, match="first frame"):
        streaming.StreamingEngine(model, "dff").step(1, np.zeros(SIZE, np.uint8))


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    from keras_video.serving import export

    return export.export_dff(model, str(tmp_path_factory.mktemp("export") / "export"),
                             ["a", "b", "c"])


@pytest.mark.parametrize("mode", ["dff", "dis", "per_frame"])
def test_the_saved_model_alone_streams_as_the_keras_model(model, frames, mode, exported):
    folder = exported
    keras_engine = streaming.StreamingEngine(model, mode, key_interval=3)
    served = streaming.StreamingEngine.from_export(folder, mode, key_interval=3)
    assert served.grid == keras_engine.grid and served.stride == keras_engine.stride
    for ours, theirs in zip(served.run(frames), keras_engine.run(frames)):
        assert ours.is_key == theirs.is_key
        np.testing.assert_allclose(ours.output, theirs.output, atol=1e-5, rtol=0)
