"""Multiply-accumulates of a model's forward pass, counted from its layers' shapes.

FLOPs = 2 x MACs, the convention of the C3D / ResNet3D papers' tables. Only the layers
that dominate the cost are counted (convolutions, dense, LSTM, and the FlowWarp
bilinear sample); normalisation, activations and pooling are left out, as the papers do.
"""

import math

import keras


def _size(shape):
    return math.prod(int(d) for d in shape if d is not None)


def _layer_macs(layer, input_shape, output_shape, repeat):
    """MACs of one call of `layer`, times `repeat` (TimeDistributed steps)."""
    if isinstance(layer, keras.layers.TimeDistributed):
        inner_in = (input_shape[0], *input_shape[2:])
        inner_out = (output_shape[0], *output_shape[2:])
        return _layer_macs(layer.layer, inner_in, inner_out, repeat * int(input_shape[1]))
    if isinstance(layer, keras.Model):
        return repeat * model_macs(layer)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel = _size(layer.kernel.shape[:-2]) * int(layer.kernel.shape[-1])
        return repeat * _size(output_shape[1:]) * kernel // max(1, int(layer.kernel.shape[-1]))
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                          keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)):
        kernel = layer.kernel.shape  # (*window, in, out) or (*window, out, in) transposed
        window_in = _size(kernel[:-1]) // layer.groups if not isinstance(
            layer, (keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)) else None
        if window_in is None:  # transposed: every input position meets the whole kernel
            return repeat * _size(input_shape[1:-1]) * _size(kernel)
        return repeat * _size(output_shape[1:]) * window_in
    if isinstance(layer, keras.layers.Dense):
        return repeat * _size(output_shape[1:]) * int(layer.kernel.shape[0])
    if isinstance(layer, keras.layers.LSTM):
        steps = int(input_shape[1])
        units, features = layer.units, int(input_shape[-1])
        return repeat * steps * 4 * units * (features + units)
    if type(layer).__name__ == "FlowWarp":
        return repeat * _size(output_shape[1:]) * 4  # four neighbours, one weight each
    return 0


def _shapes(tensors):
    tensors = tensors if isinstance(tensors, (list, tuple)) else [tensors]
    return [tuple(t.shape) for t in tensors]


def model_macs(model):
    """MACs of one example through `model` (a functional Keras model), counting each
    call of a layer in this model's graph (a sub-model called twice counts twice)."""
    graph = getattr(model, "_functional", None) or model  # a Sequential wraps one
    total = 0
    for nodes in graph._nodes_by_depth.values():
        for node in nodes:
            ins, outs = _shapes(node.input_tensors), _shapes(node.output_tensors)
            if ins and outs:
                total += _layer_macs(node.operation, ins[0], outs[0], 1)
    return total


def gflops_per_example(model):
    """2 x MACs / 1e9 of one example's forward pass."""
    return 2 * model_macs(model) / 1e9


def dff_frame_costs(model):
    """GFLOPs per frame of a model made of N_feat, a flow net and N_task (dff,
    dff_rfcn): a key frame (N_feat + N_task), a propagated frame (flow net + bilinear
    warp and scale field + N_task), and their ratio. A detector's head after N_task
    (proposals, PSRoI pooling, NMS), paid by every frame, is not counted."""
    from keras_video.models.dff import dff_parts

    n_feat, n_flow, n_task = dff_parts(model)
    feat, task, flow = (gflops_per_example(m) for m in (n_feat, n_task, n_flow))
    h, w, channels = n_feat.output.shape[1:]
    warp = 2 * h * w * channels * 4 / 1e9 + h * w * channels / 1e9  # 4 taps, then scale
    return {"feat_gflops": feat, "task_gflops": task, "flow_gflops": flow,
            "warp_gflops": warp, "key_gflops": feat + task,
            "propagate_gflops": flow + warp + task,
            "frame_speedup": (feat + task) / (flow + warp + task)}


def dff_speedup(costs, interval):
    """The per-frame model's cost over DFF's mean cost per frame at a key interval."""
    key, other = costs["key_gflops"], costs["propagate_gflops"]
    return interval * key / (key + (interval - 1) * other)
