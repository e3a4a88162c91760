"""The pipeline's "flow" modality (ClipSpec(modality="flow")): DIS optical flow of the
decoded frames, quantized to uint8, through training clips, flips, the video protocol,
the TFRecord refusal, the models' normalisation and the exported `serve`."""

import os

import cv2
import numpy as np
import pytest
import tensorflow as tf

from conftest import moving_texture
from keras_video.tasks import evaluation
from keras_video.serving import export
from keras_video.data import decode, optical_flow, pipeline, tfrecord, transforms
from keras_video.data.pipeline import ClipSpec, make_dataset
from keras_video.data.samples import Samples
from keras_video.layers import ImageNormalization
from keras_video.models import build_model

SHIFT = (2, -1)  # (dx, dy) pixels a frame
BOUND = 4.0


def _write_frames(folder, frames):
    """A frame folder of lossless PNGs (RGB frames written as OpenCV's BGR)."""
    os.makedirs(folder)
    for t, frame in enumerate(frames):
        cv2.imwrite(os.path.join(folder, f"{t:03d}.png"), frame[..., ::-1])
    return str(folder)


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    """Two frame folders: 20 frames moving by SHIFT (class 0), 7 frames moving the
    other way (class 1)."""
    root = tmp_path_factory.mktemp("flow")
    paths = [_write_frames(root / "a", moving_texture(SHIFT, 20, 48, seed=1)),
             _write_frames(root / "b", moving_texture((-1, 2), 7, 48, seed=2))]
    return Samples(paths, np.array([0, 1], np.int64), "classification", ["a", "b"])


def test_quantization_round_trip_and_mirror():
    flow = np.random.default_rng(0).uniform(-6, 6, (5, 9, 9, 2)).astype(np.float32)
    q = optical_flow.quantize(flow, BOUND)
    assert q.dtype == np.uint8 and q.min() == 0 and q.max() == 255  # +-6 clipped to +-4
    inside = np.abs(flow) <= BOUND
    step = 2 * BOUND / 255
    back = optical_flow.dequantize(q, BOUND)
    assert np.abs(back - flow)[inside].max() <= step / 2 + 1e-6
    np.testing.assert_allclose(back[~inside], np.sign(flow[~inside]) * BOUND, atol=1e-6)
    # Negating the flow is 255 - q (but for exact halves, which round to even).
    np.testing.assert_array_equal(optical_flow.quantize(-flow, BOUND), 255 - q)


def test_a_flow_clip_is_the_quantized_flow_of_one_more_frame(moving):
    clip = ClipSpec(8, (40, 40), "first", resize=(48, 48), crop="center",
                    modality="flow", flow_bound=BOUND)
    assert clip.shape == (8, 40, 40, 2) and clip.frames_to_read == 9
    x, y = next(iter(make_dataset(moving, clip, 2, training=False)))
    assert x.shape == (2, 8, 40, 40, 2) and x.dtype == tf.uint8
    frames = decode.read_clip(moving.paths[0], 9, "first", size=(48, 48), grayscale=True)
    expected = optical_flow.quantize(optical_flow.consecutive_flow(frames), BOUND)
    np.testing.assert_array_equal(x[0], expected[:, 4:44, 4:44])
    # ... and it is the motion: (dx, dy) = SHIFT pixels away from the wrapped borders.
    middle = optical_flow.dequantize(x[0].numpy()[:, 8:-8, 8:-8], BOUND)
    np.testing.assert_allclose(np.median(middle, axis=(0, 1, 2)), SHIFT, atol=0.1)


def test_a_flip_mirrors_the_flow_and_negates_dx(moving):
    clip = ClipSpec(6, (48, 48), "first", modality="flow", flow_bound=BOUND, flip=True)
    flow = pipeline.clip_reader(clip)(moving.paths[0].encode(), None)
    seen = set()
    for seed in range(12):
        out = transforms.apply(tf.constant(flow), clip, tf.constant(seed, tf.int64)).numpy()
        if np.array_equal(out, flow):
            seen.add("kept")
            continue
        mirrored = flow[:, :, ::-1]
        np.testing.assert_array_equal(out[..., 0], 255 - mirrored[..., 0])
        np.testing.assert_array_equal(out[..., 1], mirrored[..., 1])
        dx = optical_flow.dequantize(out[..., 0][:, 8:-8, 8:-8], BOUND)
        assert np.median(dx) == pytest.approx(-SHIFT[0], abs=0.1)
        seen.add("flipped")
    assert seen == {"kept", "flipped"}


def test_video_protocol_cuts_the_flows_of_the_whole_video(moving):
    clip = ClipSpec(8, (48, 48), "random", modality="flow", flow_bound=BOUND)
    read = evaluation._video_clips_reader(clip.for_eval(), from_array=False)
    clips = read(moving.paths[0].encode(), None)
    frames = decode.read_all_frames(moving.paths[0], (48, 48), grayscale=True)
    flows = optical_flow.quantized_flow(frames, BOUND)  # 19 flows of 20 frames
    assert clips.shape == (3, 8, 48, 48, 2)
    np.testing.assert_array_equal(clips[0], flows[0:8])
    np.testing.assert_array_equal(clips[1], flows[8:16])
    np.testing.assert_array_equal(clips[2], flows[[16, 17, 18, 16, 17, 18, 16, 17]])
    # With stride 2, flow between every second frame: twice the motion.
    strided = evaluation._video_clips_reader(
        ClipSpec(4, (48, 48), "center", stride=2, modality="flow", flow_bound=BOUND),
        from_array=False)(moving.paths[0].encode(), None)
    np.testing.assert_array_equal(strided[0], optical_flow.quantized_flow(frames[0:10:2],
                                                                          BOUND))
    # The protocol end to end: every clip of both videos, labels kept.
    labels, scores, counts = evaluation.video_scores(
        build_model("r3d10", input_shape=clip.shape, num_classes=2, width=0.125,
                    normalization="tf"), moving, clip, "video")
    assert counts.tolist() == [3, 1] and labels.tolist() == [0, 1] and scores.shape == (2, 2)


def test_flow_settings_that_cannot_work_are_refused(tmp_path):
    with pytest.raises(ValueError, match="modality must be one of"):
        ClipSpec(8, modality="depth")
    with pytest.raises(ValueError, match="grayscale does not apply"):
        ClipSpec(8, modality="flow", grayscale=True)
    with pytest.raises(ValueError, match="flow_bound must be > 0"):
        ClipSpec(8, modality="flow", flow_bound=0)
    with pytest.raises(ValueError, match="resizes, and flow is in pixels"):
        ClipSpec(8, (32, 32), "random", resize=(36, 48), crop="multiscale_corner",
                 modality="flow")
    source = tfrecord.TfrecordSource([], np.zeros(0, np.int64), "classification",
                                     root=str(tmp_path), shards=[],
                                     records=np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="TFRecord shards .* no optical flow"):
        make_dataset(source, ClipSpec(8, modality="flow"), 2, training=False)


def test_normalisation_of_flow_is_in_units_of_the_bound():
    q = np.array([[0, 127.5, 255, 191.25]], np.float32).reshape(1, 1, 2, 2)
    out = ImageNormalization("tf")(q).numpy()
    np.testing.assert_allclose(out.ravel(), [-1, 0, 1, 0.5])
    unit = ImageNormalization("unit")(q).numpy()
    np.testing.assert_allclose(unit.ravel(), q.ravel() / 255)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        ImageNormalization("kinetics")(q)


def test_exported_flow_model_serves_the_quantized_flow(moving, tmp_path):
    clip = ClipSpec(6, (40, 40), "random", resize=(48, 48), crop="random",
                    modality="flow", flow_bound=BOUND)
    model = build_model("cnn_lstm", input_shape=clip.shape, backbone="small", width=0.25,
                        lstm_units=(4,), task="classification", num_classes=2,
                        normalization="tf")
    export.export_saved_model(model, clip, str(tmp_path / "export"), "classification",
                              ["a", "b"])
    serve = tf.saved_model.load(str(tmp_path / "export")).signatures["serve"]
    flow = pipeline.clip_reader(clip.for_eval())(moving.paths[0].encode(), None)
    assert flow.shape == (6, 48, 48, 2)  # the decode size: serve takes the centre crop
    served = serve(frames=tf.constant(flow[None]))["predictions"].numpy()
    np.testing.assert_allclose(served, model(flow[None, :, 4:44, 4:44]), atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError):  # RGB frames are not flow
        serve(frames=tf.zeros((1, 6, 48, 48, 3), tf.uint8))
