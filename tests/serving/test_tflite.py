"""TensorFlow Lite export (keras_video.serving.tflite, keras_video.commands.export):
every model family's float32 .tflite file gives the Keras model's outputs on the same
uint8 clips within 1e-4, with builtin ops only; float16 within FLOAT16_TOLERANCE; int8
runs; the rewrites (resize, upsample) equal TensorFlow's ops; an op without a builtin is
named, and converted with Select TF ops only when allowed, with a warning; the command
writes the files of a run.

Tiny models (32 x 32 frames; 8 of them for the 3D ResNets, 16 for C3D, 4 for the
per-frame CNNs, whose graph holds a copy of the CNN per frame), with BatchNorm
statistics and classifier weights moved off their initialisation (`_trained_like`),
so that the scores compared differ from clip to clip and from a uniform distribution.
float16 is checked on three families and DFF (each conversion costs seconds); the
others' errors were measured the same way (FLOAT16_TOLERANCE).
"""

import functools
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_video import run_dir
from keras_video.data.pipeline import ClipSpec
from keras_video.models import build_model, dff
from keras_video.serving import export, tflite

FLOAT32_TOLERANCE = 1e-4
# float16 stores every weight with 11 significant bits (a relative rounding error up to
# 2^-11 = 4.9e-4; the arithmetic stays float32 on a CPU). Summed over a layer's weights
# and compounded over up to ~40 layers (BatchNorm, dividing by small variances, adds
# to it), the logits move by up to a few 1e-3 of their span, and a softmax score by at
# most half the largest logit change. Measured on these models (the float16 files
# of every family, tests and report): frame_cnn 2.9e-4, c3d 3.9e-4, r3d18 6.8e-4,
# cnn_lstm keypoints 1.0e-3, r2plus1d18 4.8e-3 (logits spanning 3), DFF per-frame
# 5.8e-3 (logits spanning 25), DFF features (0..1.7) 3.9e-3, the regression output
# of cnn_lstm (spanning 0.9) 6.3e-4. The bound, 1e-2 absolute, is 1.7x the worst.
FLOAT16_TOLERANCE = 1e-2


def _trained_like(model, seed=0, head=None, network=None):
    """BatchNorm moving statistics of real activations (those of a batch of random
    clips, taken in training mode with momentum 0), random BatchNorm scales and offsets,
    and random weights of the classifier layer `head` scaled so that the logits of
    those clips span about 3 (regression: outputs spanning about 1): outputs that differ
    from clip to clip and are neither uniform nor saturated. `network`: the model to
    run (default `model`)."""
    rng = np.random.default_rng(seed)
    network = network or model
    norms = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
             if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    shape = (6, *network.input_shape[1:])
    level = rng.uniform(40, 215, (6,) + (1,) * (len(shape) - 1))
    batch = np.float32(np.clip(level + rng.uniform(-30, 30, shape), 0, 255))
    network(batch, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
        layer.gamma.assign(rng.uniform(0.7, 1.3, layer.gamma.shape).astype("float32"))
        layer.beta.assign(rng.normal(0, 0.2, layer.beta.shape).astype("float32"))
    if head:
        kernel = _find_layer(model, head).kernel
        kernel.assign(rng.normal(0, 1 / np.sqrt(kernel.shape[0]),
                                 kernel.shape).astype("float32"))
        for _ in range(3):  # the logits scale with the kernel; saturation hides them
            out = np.asarray(network(batch), np.float64)
            if out.shape[-1] == 1:
                spread, target = np.ptp(out), 1.0
            else:
                log_p = np.log(np.maximum(out, 1e-30))
                spread, target = (log_p.max(-1) - log_p.min(-1)).max(), 3.0
            kernel.assign(kernel * np.float32(target / spread))
    return model


def _find_layer(model, name):
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if layer.name == name:
            return layer
    raise KeyError(name)


def _clips(clip, count=3, seed=0):
    """Random uint8 RGB clips at the clip's decode size (what the .tflite file takes),
    each of its own brightness and contrast, so that the models tell them apart."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(-1, 1, (count, clip.num_frames, *clip.decode_size, 3))
    level = rng.uniform(40, 215, (count, 1, 1, 1, 1))
    contrast = rng.uniform(10, 40, (count, 1, 1, 1, 1))
    return np.clip(level + contrast * noise, 0, 255).astype(np.uint8)


def _keras_scores(model, clip, clips):
    """The SavedModel's serving function run by TensorFlow on the Keras model: the
    model itself on the uint8 clips, after the same preprocessing."""
    return export.serving_fn(model, clip)(tf.constant(clips))["predictions"].numpy()


def _run(content, tmp_path, name, **inputs):
    path = str(tmp_path / f"{name}.tflite")
    tflite.write(content, path)
    return tflite.TFLiteModel(path)(**inputs)


def _builtins_only(content):
    ops = tflite.model_ops(content)
    assert not [op for op in ops if op.startswith("Flex")], ops
    return ops


CLIP8 = dict(num_frames=8, size=(32, 32))
CLIP4 = dict(num_frames=4, size=(32, 32))  # the per-frame CNNs: each frame is a graph copy
FAMILIES = {
    # name: (builder arguments, clip, classifier layer, float16 checked)
    "cnn_lstm": (dict(name="cnn_lstm", input_shape=(4, 32, 32, 1), width=0.25,
                      lstm_units=(8, 8), task="regression"),
                 ClipSpec(**CLIP4, grayscale=True), "dense", True),
    "cnn_lstm_keypoints": (dict(name="cnn_lstm", input_shape=(4, 32, 32, 3),
                                backbone="small_hires", width=0.25, lstm_units=(8,),
                                readout="keypoints", keypoints=4, frame_difference=True,
                                task="classification", num_classes=4),
                           ClipSpec(**CLIP4), "predictions", False),
    "c3d": (dict(name="c3d", num_classes=4, input_shape=(16, 32, 32, 3), width=0.125,
                 batch_norm=True), ClipSpec(num_frames=16, size=(32, 32)), "fc8", True),
    "r3d18": (dict(name="r3d18", num_classes=4, input_shape=(8, 32, 32, 3), width=0.25),
              ClipSpec(**CLIP8), "fc", False),
    "r2plus1d18": (dict(name="r2plus1d18", num_classes=4, input_shape=(8, 32, 32, 3),
                        width=0.125), ClipSpec(**CLIP8), "fc", False),
    "frame_cnn": (dict(name="frame_cnn", num_classes=4, input_shape=(4, 32, 32, 3),
                       width=0.25), ClipSpec(**CLIP4), "fc", False),
}


def _family(name, seed=0):
    arguments, clip, head, _ = FAMILIES[name]
    keras.utils.set_random_seed(seed)
    arguments = dict(arguments)
    model = build_model(arguments.pop("name"), **arguments)
    return _trained_like(model, seed, head), clip


@functools.lru_cache(maxsize=None)
def _float32_file(name):
    """(model, clip, float32 .tflite bytes) of a family, converted once."""
    model, clip = _family(name)
    return model, clip, tflite.convert(model, clip=clip)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_float32_and_float16_equal_keras(name, tmp_path):
    model, clip, content = _float32_file(name)
    clips = _clips(clip)
    expected = _keras_scores(model, clip, clips)
    assert np.ptp(expected, axis=0).max() > 0.02  # scores that vary from clip to clip
    ops = _builtins_only(content)
    assert "MaxPool3D" not in str(ops) and "WHILE" not in ops
    float32 = _run(content, tmp_path, "float32", frames=clips)["predictions"]
    np.testing.assert_allclose(float32, expected, atol=FLOAT32_TOLERANCE, rtol=0)
    print(f"{name}: float32 {len(content):,} B max error "
          f"{np.abs(float32 - expected).max():.2e}")
    if not FAMILIES[name][-1]:  # float16 of the others: measured, see FLOAT16_TOLERANCE
        return
    half = tflite.convert(model, "float16", clip=clip)
    assert len(half) < 0.7 * len(content) or len(content) < 200_000
    float16 = _run(half, tmp_path, "float16", frames=clips)["predictions"]
    np.testing.assert_allclose(float16, expected, atol=FLOAT16_TOLERANCE, rtol=0)
    print(f"{name}: float16 {len(half):,} B max error {np.abs(float16 - expected).max():.2e}")


def test_a_mixed_precision_model_converts_to_builtins_in_float32(tmp_path):
    """A model trained in bfloat16 (--mixed_precision, as motion_cnn_lstm) converts with
    builtins only, computing in float32 with its float32 weights: equal to its float32
    copy, and near the bfloat16 model."""
    arguments, clip, _, _ = FAMILIES["cnn_lstm_keypoints"]
    arguments = dict(arguments)
    keras.utils.set_random_seed(4)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model(arguments.pop("name"), **arguments)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("temporal_head").compute_dtype == "bfloat16"
    content = tflite.convert(model, clip=clip)
    _builtins_only(content)
    copy = tflite.serving_copy(model)
    assert copy.get_layer("temporal_head").compute_dtype == "float32"
    clips = _clips(clip)
    scores = _run(content, tmp_path, "mixed", frames=clips)["predictions"]
    np.testing.assert_allclose(scores, _keras_scores(copy, clip, clips),
                               atol=FLOAT32_TOLERANCE, rtol=0)
    np.testing.assert_allclose(scores, _keras_scores(model, clip, clips), atol=0.05, rtol=0)


@pytest.fixture(scope="module")
def dff_model():
    """A small DFF model as in test_streaming: flow and scale heads off their zero
    initialisation, so propagated features differ from the key frame's."""
    keras.utils.set_random_seed(0)
    model = build_model("dff", num_classes=3, input_shape=(48, 64, 3), width=0.125,
                        feature_width=16)
    rng = np.random.default_rng(1)
    n_feat, n_flow, n_task = dff.dff_parts(model)
    for layer, std in ((n_flow.get_layer("predict_flow"), 0.3),
                       (n_flow.get_layer("scale_conv"), 0.05),
                       (n_task.get_layer("classifier"), 3.0)):
        layer.kernel.assign(rng.normal(0, std, layer.kernel.shape).astype("float32"))
    return _trained_like(model, 2, network=dff.per_frame_model(model))


def test_dff_parts_equal_keras(dff_model, tmp_path):
    frames = np.random.default_rng(3).integers(0, 256, (2, 48, 64, 3), dtype=np.uint8)
    keys = frames[::-1].copy()
    n_feat = dff.dff_parts(dff_model)[0]
    key_features = n_feat(np.float32(keys)).numpy()
    expected = {
        "feature": n_feat(np.float32(frames)).numpy(),
        "per_frame": dff.per_frame_model(dff_model)(np.float32(frames)).numpy(),
        "propagate": dff.propagation_model(dff_model)(
            [np.float32(frames), np.float32(keys), key_features]).numpy()}
    inputs = {"feature": dict(frame=frames), "per_frame": dict(frame=frames),
              "propagate": dict(frame=frames, key_features=key_features, key_frame=keys)}
    assert tflite.parts_of(dff_model) == ["feature", "per_frame", "propagate"]
    for part in tflite.parts_of(dff_model):
        content = tflite.convert(dff_model, part=part)
        ops = _builtins_only(content)
        (out,) = _run(content, tmp_path, part, **inputs[part]).values()
        np.testing.assert_allclose(out, expected[part], atol=FLOAT32_TOLERANCE, rtol=0)
        print(f"dff {part}: {len(content):,} B max error "
              f"{np.abs(out - expected[part]).max():.2e}; {len(ops)} builtin ops")
    # propagated, not the per-frame result: the warp and scale are in the file
    assert np.abs(expected["propagate"] - expected["per_frame"]).max() > 0.05
    half = tflite.convert(dff_model, "float16", part="per_frame")
    (out,) = _run(half, tmp_path, "half", frame=frames).values()
    np.testing.assert_allclose(out, expected["per_frame"], atol=FLOAT16_TOLERANCE, rtol=0)
    print(f"dff per_frame float16: max error {np.abs(out - expected['per_frame']).max():.2e}")


def test_int8_runs_with_the_right_shapes(dff_model, tmp_path):
    """A DFF part here; a clip model in the command line's test."""
    frames = np.random.default_rng(4).integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    content = tflite.convert(dff_model, "int8", list(frames), part="feature")
    assert "QUANTIZE" in tflite.model_ops(content)
    (features,) = _run(content, tmp_path, "dff_int8", frame=frames).values()
    assert features.shape == (3, 3, 4, 16) and features.dtype == np.float32
    with pytest.raises(ValueError, match="calibration"):
        tflite.convert(dff_model, "int8", part="feature")


def test_square_center_crop_and_area_resize_are_builtins(tmp_path):
    """A 3D-ResNet-style recipe (multiscale corner crop: its evaluation view resizes
    the centre square with antialiasing, TensorFlow's ScaleAndTranslate) and a clip
    resized by area averaging (the SavedModel's resize) both convert to matrix
    products and give TensorFlow's result."""
    model, _ = _family("frame_cnn")
    clip = ClipSpec(**CLIP4, resize=(40, 52), crop="multiscale_corner")
    clips = _clips(clip, count=2)
    content = tflite.convert(model, clip=clip)
    _builtins_only(content)
    scores = _run(content, tmp_path, "square", frames=clips)["predictions"]
    np.testing.assert_allclose(scores, _keras_scores(model, clip, clips),
                               atol=FLOAT32_TOLERANCE, rtol=0)
    images = tf.constant(np.random.default_rng(5).uniform(0, 255, (2, 40, 52, 3)),
                         tf.float32)
    for size, method, antialias in (((32, 24), "area", False), ((32, 32), "bilinear", True),
                                    ((64, 70), "bilinear", False)):
        np.testing.assert_allclose(
            tflite.resize_as_matmuls(images, size, method, antialias),
            tf.image.resize(images, size, method, antialias=antialias), atol=2e-3)


def test_an_op_without_builtin_is_named_and_select_ops_only_when_allowed(caplog, tmp_path):
    """Keras's own MaxPooling3D (not keras_video's, which the export rewrites) is
    TensorFlow's MaxPool3D, which has no TensorFlow Lite builtin."""
    inputs = keras.Input((4, 8, 8, 3))
    x = keras.layers.MaxPooling3D(2)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    clip = ClipSpec(num_frames=4, size=(8, 8))
    with pytest.raises(ValueError, match="no builtin for MaxPool3D"):
        tflite.convert(model, clip=clip, select_tf_ops=False)
    with caplog.at_level(logging.WARNING):
        content = tflite.convert(model, clip=clip)
    assert "FlexMaxPool3D" in tflite.model_ops(content)
    assert "no builtin for MaxPool3D" in caplog.text and "Select TF ops" in caplog.text
    path = str(tmp_path / "flex.tflite")
    tflite.write(content, path)
    with pytest.raises(ValueError, match="needs Select TF ops"):
        tflite.TFLiteModel(path)


def test_tflite_model_resizes_the_batch_and_checks_sizes(tmp_path):
    model, clip, content = _float32_file("frame_cnn")
    path = str(tmp_path / "model.tflite")
    size = tflite.write(content, path)
    assert size == os.path.getsize(path) and not [
        n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary left
    runner = tflite.TFLiteModel(path)
    assert runner.input_shape() == (None, 4, 32, 32, 3)
    clips = _clips(clip, count=3)
    expected = model(np.float32(clips)).numpy()
    for batch in (clips, clips[:1], clips[0], clips[:2]):  # batch 3, 1, none, 2
        out = runner(frames=batch)["predictions"]
        np.testing.assert_allclose(out, expected[:len(out)], atol=FLOAT32_TOLERANCE, rtol=0)
    np.testing.assert_allclose(runner(clips)["predictions"], expected, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match=r"takes shape \('B', 4, 32, 32, 3\)"):
        runner(frames=np.zeros((1, 4, 40, 40, 3), np.uint8))


def _write_run(model_dir, model, clip, eval_data, class_names):
    """A run directory as training leaves it, but for the model and config.json only."""
    directory = run_dir.RunDir(str(model_dir)).create()
    run_dir.save_model(model, directory.best_model_path)
    directory.write_config({"train": {"task": "classification", "model": "cnn_lstm",
                                      "experiment": ""},
                            "clip": clip.to_dict(), "class_names": class_names,
                            "eval_data": eval_data})
    return directory


def test_export_command_writes_tflite_and_saved_model(class_videos, tmp_path):
    """The command's functions on a run directory: the .tflite file's scores are the
    re-exported SavedModel's (what `predict` prints) on a video read as predict reads
    it."""
    from keras_video.commands import export as command
    from keras_video.commands.predict import Predictor

    keras.utils.set_random_seed(1)
    clip = ClipSpec(num_frames=8, size=(32, 32))
    model = _trained_like(build_model("cnn_lstm", input_shape=(8, 32, 32, 3), width=0.25,
                                      lstm_units=(8,), task="classification",
                                      num_classes=2), 1, "predictions")
    directory = _write_run(tmp_path / "run", model, clip, class_videos, ["blue", "red"])
    sizes = command.export_tflite(directory.path)
    path = os.path.join(directory.export_dir, command.TFLITE_NAME)
    assert list(sizes) == [path] and sizes[path] == os.path.getsize(path)
    command.export_saved_model(directory.path)
    assert os.path.isfile(path)  # kept beside the new SavedModel
    video = os.path.join(class_videos, "red", "red_0.avi")
    frames = command.read_for_serving(clip.for_eval(), video)
    scores = tflite.TFLiteModel(path)(frames=frames)["predictions"][0]
    served = Predictor(directory.path)(video, top_k=2)
    assert [s["class"] for s in served] == [["blue", "red"][i] for i in np.argsort(-scores)]
    np.testing.assert_allclose([s["score"] for s in served], np.sort(scores)[::-1],
                               atol=FLOAT32_TOLERANCE)
    assert command.tflite_paths("out/m.tflite", ["feature", "per_frame"]) == {
        "feature": "out/m_feature.tflite", "per_frame": "out/m_per_frame.tflite"}
    assert len(command.calibration_clips(directory.path, 2)) == 2


@pytest.mark.slow
def test_export_command_line_int8(class_videos, tmp_path):
    """`python -m keras_video.export` in a fresh process: its flags, int8 calibrated on
    the run's held-out clips, its output line; the file runs."""
    from conftest import run_module

    keras.utils.set_random_seed(2)
    clip = ClipSpec(num_frames=4, size=(32, 32))
    model = build_model("frame_cnn", num_classes=2, input_shape=(4, 32, 32, 3), width=0.25)
    directory = _write_run(tmp_path / "run", model, clip, class_videos, ["blue", "red"])
    output = str(tmp_path / "int8.tflite")
    result = run_module("keras_video.export", f"--model_dir={directory.path}",
                        "--format=tflite", "--quantize=int8", "--calibration_clips=3",
                        f"--output={output}")
    assert result.returncode == 0, result.stderr[-3000:]
    size = os.path.getsize(output)
    assert f"{output}: {size:,} bytes" in result.stdout and "int8" in result.stdout
    assert "deprecated" not in result.stderr
    scores = tflite.TFLiteModel(output)(_clips(clip))["predictions"]
    assert scores.shape == (3, 2) and np.allclose(scores.sum(axis=1), 1, atol=0.02)
