"""Bilinear warping of a feature map by a dense flow field (Deep Feature Flow's W).

    output[b, y, x] = bilinear sample of features[b] at (x + flow[b, y, x, 0],
                                                         y + flow[b, y, x, 1])

Flow is in feature-map pixels, channel 0 horizontal, channel 1 vertical: the same
convention as OpenCV's optical flow computed from the current frame to the key frame,
and as MXNet's GridGenerator("warp") + BilinearSampler pair that the Deep Feature Flow
reference uses. Each of the four bilinear neighbours that falls outside the map reads
zero (no clamping), so features fade out smoothly across the border instead of the
edge row being smeared outward.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_video")
class FlowWarp(keras.layers.Layer):
    """Warps `features` [B, h, w, C] by `flow` [B, h, w, 2]; call on `[features, flow]`.

    Differentiable in both inputs. The gathers run on the flattened map (one
    `take` per neighbour), which works with unknown batch and map sizes, under XLA
    and on every device.

    Precision. In float16 the sample coordinate x + flow_x is much coarser than the
    flow: float16 has 11 significant bits, so at x = 1000 neighbouring representable
    values are 0.5 apart and a flow of 0.25 would vanish (at 2048, 1 apart). The
    layer therefore turns off Keras' input autocasting and computes coordinates and
    the four bilinear weights in float32 whenever its compute dtype is 16-bit (in
    the compute dtype otherwise, so float64 stays float64). Only the weights, in
    [0, 1], are cast down to the compute dtype for the blend, so under mixed
    precision the gathered features and the output stay float16.

    Gradient w.r.t. the flow at an integer sample position is one-sided: with
    x0 = floor(x) and weight (x - x0) on the right neighbour, it is the difference
    right-minus-left neighbour, the derivative from the right. This is what TF's
    autodiff of the bilinear formula gives (floor has zero gradient) and what other
    bilinear samplers (tf.image, MXNet's BilinearSampler) do; in particular at zero
    flow (every position integer) the flow still receives a non-zero gradient.
    """

    def __init__(self, **kwargs):
        # No autocast: the flow must reach `call` at full precision (see above).
        super().__init__(autocast=False, **kwargs)

    def build(self, input_shape):
        features_shape, flow_shape = input_shape
        if len(features_shape) != 4 or len(flow_shape) != 4 or flow_shape[-1] != 2:
            raise ValueError("FlowWarp expects [features [B, h, w, C], flow [B, h, w, 2]], "
                             f"got shapes {features_shape} and {flow_shape}")
        for a, b in zip(features_shape[1:3], flow_shape[1:3]):
            if a is not None and b is not None and a != b:
                raise ValueError("features and flow must have the same height and width, "
                                 f"got {features_shape} and {flow_shape}")

    def _coordinate_dtype(self):
        return "float32" if self.compute_dtype in ("float16", "bfloat16") else self.compute_dtype

    def call(self, inputs):
        features, flow = inputs
        features = ops.cast(features, self.compute_dtype)
        coord_dtype = self._coordinate_dtype()
        flow = ops.cast(flow, coord_dtype)
        shape = ops.shape(features)
        batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]

        xs = ops.cast(ops.arange(width), coord_dtype)
        ys = ops.cast(ops.arange(height), coord_dtype)
        # Clipping to just outside the map keeps huge flows from overflowing the int32
        # cast; beyond one pixel outside every neighbour reads zero anyway, so neither
        # the value nor the (zero) gradient changes.
        px = ops.clip(xs[None, None, :] + flow[..., 0], -2.0, ops.cast(width, coord_dtype) + 1.0)
        py = ops.clip(ys[None, :, None] + flow[..., 1], -2.0, ops.cast(height, coord_dtype) + 1.0)
        x0f, y0f = ops.floor(px), ops.floor(py)
        fx, fy = px - x0f, py - y0f  # carries the whole gradient w.r.t. the flow
        x0, y0 = ops.cast(x0f, "int32"), ops.cast(y0f, "int32")

        flat = ops.reshape(features, (-1, channels))
        base = ops.reshape(ops.arange(batch, dtype="int32") * height * width, (-1, 1, 1))

        def neighbour(xi, yi, weight):
            inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
            index = base + ops.clip(yi, 0, height - 1) * width + ops.clip(xi, 0, width - 1)
            weight = ops.where(inside, weight, ops.zeros_like(weight))
            values = ops.take(flat, index, axis=0)  # [B, h, w, C]
            return values * ops.cast(weight, self.compute_dtype)[..., None]

        return (neighbour(x0, y0, (1.0 - fx) * (1.0 - fy))
                + neighbour(x0 + 1, y0, fx * (1.0 - fy))
                + neighbour(x0, y0 + 1, (1.0 - fx) * fy)
                + neighbour(x0 + 1, y0 + 1, fx * fy))

    def compute_output_shape(self, input_shape):
        features_shape, flow_shape = input_shape
        return (features_shape[0], *[a if a is not None else b for a, b in
                                     zip(features_shape[1:3], flow_shape[1:3])],
                features_shape[3])

    def get_config(self):
        # No settings of its own: name, dtype policy and trainable come from the base.
        return super().get_config()
