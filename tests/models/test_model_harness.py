"""The harness every registry model passes (as keras-hub's backbone test case): it
builds at a small size, runs, rebuilds from its config, saves to .keras and loads back
equal, and its SavedModel (keras_video.serving.export: uint8 frames in) gives the
Keras model's output. A model added to the registry without a small configuration
here fails `test_every_registry_model_has_a_harness_case`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_video import saving
from keras_video.data.pipeline import ClipSpec
from keras_video.models import build_model, model_names, rfcn
from keras_video.models.dff import dff_parts
from keras_video.serving import export

# name -> (builder keyword arguments, ClipSpec of a clip model or None for a per-frame
# segmentation model). Small widths and sizes: the harness checks plumbing, not scale.
_CLIP = dict(num_classes=5, width=0.125)
# The same blocks as r3d50 (r2plus1d18), more of them: built, run and rebuilt from
# their config; saving and export are r3d50's (r2plus1d18's) code, minutes more here.
_DEEP = ("r3d101", "r3d152", "r3d200", "r2plus1d34")


def _clip_case(name):
    frames = 16 if name == "c3d" else 4
    size = 32 if name == "c3d" else 24
    return dict(_CLIP, input_shape=(frames, size, size, 3)), ClipSpec(frames, (size, size))


CASES = {
    "cnn_lstm": (dict(num_classes=5, input_shape=(6, 32, 32, 3), backbone="small",
                      lstm_units=(8,), task="classification"), ClipSpec(6, (32, 32))),
    "frame_cnn": _clip_case("frame_cnn"),
    "c3d": _clip_case("c3d"),
    **{f"r3d{d}": _clip_case(f"r3d{d}") for d in (10, 18, 34, 50, 101, 152, 200)},
    "r2plus1d18": _clip_case("r2plus1d18"),
    "r2plus1d34": _clip_case("r2plus1d34"),
    "dff": (dict(num_classes=3, input_shape=(64, 64, 3), backbone="resnet18",
                 feature_width=16, width=0.125, output_stride=16), None),
    "frame_seg": (dict(num_classes=3, input_shape=(64, 64, 3), backbone="resnet18",
                       feature_width=16, width=0.125, output_stride=16), None),
    "rfcn": (dict(num_classes=2, input_shape=(64, 64, 3), backbone="resnet18",
                  feature_width=16, width=0.125), None),
    "dff_rfcn": (dict(num_classes=2, input_shape=(64, 64, 3), backbone="resnet18",
                      feature_width=16, width=0.125, flow_width=0.125), None),
}


def test_every_registry_model_has_a_harness_case():
    assert sorted(CASES) == model_names()


def _inputs(model, seed=0):
    """uint8-valued float inputs for each model input (frames are what models read)."""
    rng = np.random.default_rng(seed)
    values = {t.name.split(":")[0]: rng.integers(0, 256, (2, *t.shape[1:])).astype("float32")
              for t in model.inputs}
    return values if len(values) > 1 else next(iter(values.values()))


def _same(a, b, atol=1e-5):
    """Equal outputs: arrays, or dicts of arrays with the same keys."""
    if isinstance(a, dict) or isinstance(b, dict):
        assert sorted(a) == sorted(b)
        for k in a:
            _same(a[k], b[k], atol)
        return
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=atol, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(CASES))
def test_registry_model_harness(name, tmp_path):
    kwargs, clip = CASES[name]
    keras.utils.set_random_seed(0)
    model = build_model(name, **kwargs)
    x = _inputs(model)
    y = model(x, training=False)
    for value in (y.values() if isinstance(y, dict) else [y]):
        assert np.all(np.isfinite(np.asarray(value)))
    _same(model(x, training=False), y)  # inference is deterministic

    # get_config round trip: the same architecture, which takes the same weights.
    rebuilt = keras.Model.from_config(model.get_config())
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]
    rebuilt.set_weights(model.get_weights())
    _same(rebuilt(x, training=False), y)
    if name in _DEEP:
        return

    # .keras save and load.
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    _same(saving.load_model(path)(x, training=False), y)

    folder = str(tmp_path / "export")
    if clip is not None:
        export.export_saved_model(model, clip, folder, "classification",
                                  [str(c) for c in range(kwargs["num_classes"])])
        loaded = tf.saved_model.load(folder)  # kept: its functions need its variables
        _same(loaded.serve(tf.constant(x, tf.uint8))["predictions"], y)
    else:
        export.export_dff(model, folder, [str(c) for c in range(kwargs["num_classes"])])
        loaded = tf.saved_model.load(folder)
        frame = x["current"] if isinstance(x, dict) else x
        n_feat, _, n_task = dff_parts(model)
        # What the signatures serve: a segmentation's probabilities, a detector's
        # detections (keras_video.models.rfcn's inference head on the maps).
        if rfcn.is_detector(model):
            detect = rfcn.detector_of(model)

            def head(maps):
                return dict(detect(maps))
        else:
            def head(probabilities):
                return {"probabilities": probabilities}

        per_frame = head(n_task(n_feat(frame, training=False), training=False))
        _same(dict(loaded.per_frame(tf.constant(frame, tf.uint8))), per_frame, atol=1e-4)
        features = loaded.feature(tf.constant(frame, tf.uint8))["features"]
        _same(features, n_feat(frame, training=False), atol=1e-4)
        if isinstance(x, dict):  # dff, dff_rfcn: the propagated path
            key = x["key"]
            propagated = loaded.propagate(tf.constant(frame, tf.uint8),
                                          n_feat(key, training=False),
                                          tf.constant(key, tf.uint8))
            _same(dict(propagated), head(y), atol=1e-4)
