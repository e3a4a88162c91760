"""Position-sensitive RoI pooling, R-FCN's read-out (Deep Feature Flow's detector head).

A port of the reference's MXNet operator, msracver/Deep-Feature-Flow
dff_rfcn/operator_cxx/psroi_pooling.cu (PSROIPoolForwardKernel; the .cc CPU version
is empty): for RoI r = (b, x1, y1, x2, y2) in image pixels,

    roi_start = round(x1) * spatial_scale,  roi_end = (round(x2) + 1) * spatial_scale
    roi size  = max(roi_end - roi_start, 0.1),  bin size = roi size / pooled_size
    bin (i, j) rows    [floor(y_start + i bin_h), ceil(y_start + (i + 1) bin_h))
               columns [floor(x_start + j bin_w), ceil(x_start + (j + 1) bin_w)),
               both clipped to the map
    output[r, i, j, c] = mean of features[b, rows, columns, (c * G + gi) * G + gj]
                         (0 for an empty bin)

with round() half away from zero (C's round) and gi = floor(i G / pooled_size) (= i
when pooled_size = group_size = G, as R-FCN uses: 7). So the map's channels are
grouped class-major: output channel c owns the G * G consecutive channels
c * G * G ... (c + 1) * G * G - 1, row-major over the bins. R-FCN's rfcn_cls (7 * 7 *
classes channels, spatial_scale 0.0625) then averages the 7 x 7 output over the bins
(dff_rfcn/symbols/resnet_v1_101_flownet_rfcn.py).

Arithmetic. The bin edges are the float32 values the CUDA kernel computes as nvcc
compiles it by default (--fmad=true, no fast math; MXNet's build adds neither
flag): IEEE division for the bin size and one fused multiply-add, rounded once, for
y_start + i bin_h. This matters: an edge that lands within a rounding error of an
integer moves by one pixel between a fused and a separately rounded multiply-add,
and that happens for ordinary integer RoIs. The edges are evaluated in float64 where
every intermediate is exact (or far from a float32 rounding boundary) and then
rounded to float32 once, so no compiler rewrite (XLA turns a division by a constant
into a multiplication by its reciprocal, and may fuse or split multiply-adds) can
move them.

Layout, channels-last: features [B, H, W, output_dim * G * G], rois [R, 5], output
[R, pooled_size, pooled_size, output_dim] (the reference's [R, output_dim, P, P] with
the channels moved last).

How. Each bin's sum is read from an integral image of its score map (prefix sums
over rows and columns, zero-padded in front) with four gathers, and its pixel count
is known from its bounds: no loop over RoIs or pixels, and the cost does not grow
with the RoI size. The prefix sums are two products with a triangular matrix of ones
(on a CPU faster than cumulative sums, with XLA or without, on maps of 16 x 16 up to
the reference's 38 x 63); the result is then rearranged into G x G score maps of
output_dim channels, so that each gather reads the output_dim channels of one point
at once. The integral image is accumulated in float64 so that the difference of four
large partial sums keeps full float32 precision on large maps with a non-zero mean.
The gradient with respect to the features is the exact one of the averages (each
pixel of a bin receives the bin's gradient / its count, the reference's backward
kernel); the RoIs get none (the bin bounds are piecewise constant in them).
"""

import keras
import numpy as np
import tensorflow as tf


def round_half_away_from_zero(x):
    """C's round(): 2.5 -> 3, -2.5 -> -3 (tf.round rounds half to even)."""
    magnitude = tf.abs(x)
    whole = tf.floor(magnitude)
    rounded = whole + tf.cast(magnitude - whole >= 0.5, x.dtype)  # the fraction is exact
    return tf.where(x < 0, -rounded, rounded)


def _float32(x):
    """float64 -> the nearest float32 value, kept in float64."""
    return tf.cast(tf.cast(x, tf.float32), tf.float64)


def _prefix_sums(size):
    """[size + 1, size] float64 ones below the diagonal: row y of its product with a
    map sums the map's rows < y (a zero row first), an integral image's step along one
    axis as one matrix product."""
    index = tf.range(size + 1)
    return tf.cast(index[:, None] > index[None, :-1], tf.float64)


@keras.saving.register_keras_serializable(package="keras_video")
class PSRoIPooling(keras.layers.Layer):
    """Position-sensitive average pooling of `features` [B, H, W, output_dim * G * G]
    over `rois` [R, 5] = (batch index, x1, y1, x2, y2) in image pixels; call on
    `[features, rois]`, get [R, pooled_size, pooled_size, output_dim].

    spatial_scale: feature-map pixels per image pixel (1 / 16 for R-FCN's stride-16 res5).
    output_dim: channels of the output (classes, or 4 * regression classes).
    group_size: G, the grid of score maps per output channel.
    pooled_size: bins per side (default G); with another value bin i reads score map
    floor(i G / pooled_size), as the reference.
    """

    def __init__(self, spatial_scale, output_dim, group_size=7, pooled_size=None, **kwargs):
        # No autocast: RoI coordinates in image pixels must reach `call` at full precision
        # (the features are cast to the compute dtype's output in `call`).
        super().__init__(autocast=False, **kwargs)
        self.spatial_scale = float(spatial_scale)
        self.output_dim = int(output_dim)
        self.group_size = int(group_size)
        self.pooled_size = self.group_size if pooled_size is None else int(pooled_size)
        if min(self.output_dim, self.group_size, self.pooled_size) < 1 or self.spatial_scale <= 0:
            raise ValueError("PSRoIPooling needs positive spatial_scale, output_dim, group_size "
                             f"and pooled_size, got {self.get_config()}")

    def build(self, input_shape):
        features_shape, rois_shape = input_shape
        channels = self.output_dim * self.group_size ** 2
        if len(features_shape) != 4 or features_shape[-1] not in (None, channels):
            raise ValueError(f"PSRoIPooling expects features [B, H, W, {channels}] "
                             f"(output_dim * group_size ** 2), got {features_shape}")
        if len(rois_shape) != 2 or rois_shape[-1] not in (None, 5):
            raise ValueError(f"PSRoIPooling expects rois [R, 5], got {rois_shape}")

    def _score_map_of_bins(self):
        """[P] int64: the score map row (or column) gi = floor(i G / P) that bin i reads."""
        size, group = self.pooled_size, self.group_size
        return tf.constant(np.minimum(np.arange(size) * group // size, group - 1), tf.int64)

    def _bin_bounds(self, start, end, size):
        """[R, P] first and one-past-last pixel (int64) of each bin along one axis,
        clipped to [0, size], from the RoI's float32 start and end (float64 tensors)."""
        length = tf.maximum(_float32(end - start), _float32(tf.constant(0.1, tf.float64)))
        bin_size = _float32(length / self.pooled_size)[:, None]
        index = tf.range(self.pooled_size + 1, dtype=tf.float64)[None, :]
        edges = _float32(index * bin_size + start[:, None])  # fmaf: exact, rounded once
        size = tf.cast(size, tf.float64)
        low = tf.clip_by_value(tf.floor(edges[:, :-1]), 0.0, size)
        high = tf.clip_by_value(tf.math.ceil(edges[:, 1:]), 0.0, size)
        return tf.cast(low, tf.int64), tf.cast(high, tf.int64)

    def call(self, inputs):
        features, rois = inputs
        rois = tf.cast(tf.stop_gradient(tf.cast(rois, tf.float32)), tf.float64)
        shape = tf.shape(features, out_type=tf.int64)
        height, width = shape[1], shape[2]

        # The kernel's float32 RoI corners: round(x1) * scale, (round(x2) + 1) * scale.
        scale = _float32(tf.constant(self.spatial_scale, tf.float64))
        rounded = round_half_away_from_zero(rois[:, 1:])
        start = _float32(rounded[:, :2] * scale)
        end = _float32((rounded[:, 2:] + 1.0) * scale)
        row_low, row_high = self._bin_bounds(start[:, 1], end[:, 1], height)
        col_low, col_high = self._bin_bounds(start[:, 0], end[:, 0], width)

        # The integral image of every channel, [B, H + 1, W + 1, C]: entry (y, x) sums
        # rows < y, columns < x. Then as G x G score maps of output_dim channels, [B, G,
        # G, H + 1, W + 1, D]: channel (c * G + gi) * G + gj is score map (gi, gj),
        # channel c.
        group, dim = self.group_size, self.output_dim
        integral = tf.einsum("yh,bhwc->bywc", _prefix_sums(height),
                             tf.cast(features, tf.float64))
        integral = tf.einsum("xw,bywc->byxc", _prefix_sums(width), integral)
        integral = tf.reshape(integral, tf.stack([shape[0], height + 1, width + 1, dim,
                                                  group, group]))
        integral = tf.transpose(integral, (0, 4, 5, 1, 2, 3))
        integral = tf.reshape(integral, (-1, dim))  # one row of D channels per point

        cell = self._score_map_of_bins()
        batch = tf.cast(rois[:, 0], tf.int64)[:, None, None]  # C's (int) cast
        score_map = (batch * group + cell[None, :, None]) * group + cell[None, None, :]  # [R, P, P]

        def corner(rows, cols):  # rows [R, P], cols [R, P] -> [R, P, P, D]
            point = (score_map * (height + 1) + rows[:, :, None]) * (width + 1) + cols[:, None, :]
            return tf.gather(integral, point)

        sums = (corner(row_high, col_high) - corner(row_low, col_high)
                - corner(row_high, col_low) + corner(row_low, col_low))
        counts = (row_high - row_low)[:, :, None] * (col_high - col_low)[:, None, :]  # [R, P, P]
        counts = tf.cast(counts, tf.float64)[..., None]
        means = tf.where(counts > 0, sums / tf.maximum(counts, 1.0), tf.zeros_like(sums))
        return tf.cast(means, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        _, rois_shape = input_shape
        return (rois_shape[0], self.pooled_size, self.pooled_size, self.output_dim)

    def get_config(self):
        return {**super().get_config(), "spatial_scale": self.spatial_scale,
                "output_dim": self.output_dim, "group_size": self.group_size,
                "pooled_size": self.pooled_size}
