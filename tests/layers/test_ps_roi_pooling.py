"""PSRoIPooling against a loop-by-loop NumPy port of the reference MXNet kernel
(Deep-Feature-Flow dff_rfcn/operator_cxx/psroi_pooling.cu): values, gradients, graph
mode, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from detection_reference import bin_bounds, reference_channel, reference_forward
from keras_video.layers import PSRoIPooling


def reference_backward(features_shape, rois, top_diff, spatial_scale, output_dim, group, pooled):
    """PSROIPoolBackwardAccKernel: each bin spreads its gradient / its area evenly."""
    grad = np.zeros(features_shape)
    _, height, width, _ = features_shape
    for n, roi in enumerate(np.asarray(rois, np.float32)):
        for ctop in range(output_dim):
            for ph in range(pooled):
                for pw in range(pooled):
                    hs, he, ws, we = bin_bounds(roi, spatial_scale, pooled, ph, pw, height, width)
                    if he <= hs or we <= ws:
                        continue
                    c = reference_channel(ctop, ph, pw, group, pooled)
                    area = (he - hs) * (we - ws)
                    grad[int(roi[0]), hs:he, ws:we, c] += top_diff[n, ph, pw, ctop] / area
    return grad


def random_case(seed, batch=2, height=9, width=11, output_dim=3, group=3, scale=0.25):
    """A map with a large mean (the integral image must not lose precision) and RoIs of
    every kind: random, partly or wholly outside the map, tiny, inverted, on .5 edges."""
    rng = np.random.default_rng(seed)
    features = (rng.normal(size=(batch, height, width, output_dim * group * group)) + 50.0)
    image_h, image_w = height / scale, width / scale
    x1 = rng.uniform(-10, image_w, 24)
    y1 = rng.uniform(-10, image_h, 24)
    rois = np.stack([rng.integers(0, batch, 24), x1, y1,
                     x1 + rng.uniform(0, image_w, 24), y1 + rng.uniform(0, image_h, 24)], axis=1)
    special = np.array([
        [0, -20.0, -30.0, 15.0, 10.0],  # top-left corner outside
        [1, image_w - 8, image_h - 8, image_w + 40, image_h + 40],  # bottom-right outside
        [0, image_w + 10, 5.0, image_w + 30, 20.0],  # wholly right of the map
        [1, 10.0, 12.0, 10.0, 12.0],  # a single pixel
        [0, 14.4, 3.6, 14.6, 3.4],  # inverted: size forced to 0.1
        [1, 2.5, -2.5, 9.5, 17.5],  # .5 coordinates: C rounds away from zero
        [0, 1.49999, 0.5, 6.5, 30.5],
        [1, 0.0, 0.0, image_w - 1, image_h - 1],  # the whole image
    ])
    return features, np.concatenate([rois, special]).astype(np.float32)


@pytest.mark.parametrize("group,pooled,scale", [(3, 3, 0.25), (2, 4, 0.5), (7, 7, 0.0625)])
def test_matches_the_reference_kernel(group, pooled, scale):
    height, width = (6, 8) if group == 7 else (9, 11)
    features, rois = random_case(group, height=height, width=width, output_dim=2,
                                 group=group, scale=scale)
    layer = PSRoIPooling(scale, output_dim=2, group_size=group, pooled_size=pooled)
    out = layer([features.astype(np.float32), rois])
    expected = reference_forward(features.astype(np.float32), rois, scale, 2, group, pooled)
    assert out.shape == (len(rois), pooled, pooled, 2)
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=0)
    assert np.all(expected[-6] == 0)  # the RoI right of the map: every bin empty
    assert np.count_nonzero(expected == 0) < expected.size  # ... but not everything


def test_bin_edges_use_a_fused_multiply_add():
    """RoI x from -20 to 11 at scale 1/4 (start -5, width 8, 3 bins of float32
    2.6666667): the last bin ends at 3 * 2.6666667 - 5 = 3.00000024 exactly. Rounding
    the product first (8.0000002 -> 8) gives 3, the fused multiply-add of the CUDA
    kernel 3.0000002: the bin takes one more column (ceil 4)."""
    features = np.random.default_rng(9).normal(size=(1, 8, 8, 9)).astype(np.float32)
    rois = np.array([[0, -20, 0, 11, 31]], np.float32)
    out = PSRoIPooling(0.25, output_dim=1, group_size=3)([features, rois])
    fused = reference_forward(features, rois, 0.25, 1, 3, 3, fused=True)
    separate = reference_forward(features, rois, 0.25, 1, 3, 3, fused=False)
    assert np.abs(fused - separate).max() > 0.01
    np.testing.assert_allclose(out, fused, atol=1e-5, rtol=0)


def test_xla_gives_the_same_bins():
    """XLA rewrites a division by a constant as a multiplication by its reciprocal; the
    bin edges must not move."""
    features, rois = random_case(11)
    layer = PSRoIPooling(0.25, output_dim=3, group_size=3)
    compiled = tf.function(lambda f, r: layer([f, r]), jit_compile=True)
    np.testing.assert_allclose(compiled(features.astype(np.float32), rois),
                               reference_forward(features.astype(np.float32), rois, 0.25, 3, 3, 3),
                               atol=1e-5, rtol=0)


def test_channel_order_is_output_channel_major():
    """Output channel c of bin (i, j) reads map channel (c * G + i) * G + j."""
    group, output_dim = 2, 3
    channels = np.arange(output_dim * group * group, dtype=np.float32)
    features = np.broadcast_to(channels, (1, 4, 4, len(channels)))
    rois = np.array([[0, 0, 0, 3, 3]], np.float32)  # the whole 4 x 4 map at scale 1
    out = PSRoIPooling(1.0, output_dim, group_size=group)([features, rois]).numpy()[0]
    for i in range(group):
        for j in range(group):
            np.testing.assert_array_equal(out[i, j], [(c * group + i) * group + j
                                                      for c in range(output_dim)])


def test_gradient_matches_the_reference_backward_kernel():
    features, rois = random_case(5)
    features = tf.constant(features, tf.float32)
    top_diff = np.random.default_rng(6).normal(size=(len(rois), 3, 3, 3))
    layer = PSRoIPooling(0.25, output_dim=3, group_size=3)
    with tf.GradientTape() as tape:
        tape.watch(features)
        loss = tf.reduce_sum(layer([features, rois]) * tf.constant(top_diff, tf.float32))
    grad = tape.gradient(loss, features)
    expected = reference_backward(features.shape, rois, top_diff, 0.25, 3, 3, 3)
    np.testing.assert_allclose(grad, expected, atol=1e-5, rtol=0)


def test_runs_in_a_tf_function_with_unknown_shapes():
    features, rois = random_case(7)
    layer = PSRoIPooling(0.25, output_dim=3, group_size=3)
    pool = tf.function(lambda f, r: layer([f, r]), input_signature=[
        tf.TensorSpec((None, None, None, 27), tf.float32), tf.TensorSpec((None, 5), tf.float32)])
    np.testing.assert_allclose(pool(features.astype(np.float32), rois),
                               layer([features.astype(np.float32), rois]), atol=1e-6, rtol=0)


def test_config_round_trip_and_saved_model(tmp_path):
    layer = PSRoIPooling(0.25, output_dim=3, group_size=3, name="psroi")
    clone = PSRoIPooling.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()

    features_in = keras.Input(shape=(9, 11, 27))
    rois_in = keras.Input(shape=(5,))
    pooled = layer([features_in, rois_in])
    scores = keras.layers.GlobalAveragePooling2D()(pooled)  # R-FCN's vote over the bins
    model = keras.Model([features_in, rois_in], scores)
    features, rois = random_case(8)
    inputs = [features.astype(np.float32), rois]
    expected = model(inputs).numpy()  # features and RoIs differ in batch size: no predict
    path = str(tmp_path / "psroi.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("psroi"), PSRoIPooling)
    np.testing.assert_array_equal(loaded(inputs), expected)
