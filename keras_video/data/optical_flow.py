"""Dense optical flow of a clip's consecutive frames, with OpenCV's DIS.

The flow the pipeline's "flow" modality reads (keras_video.data.pipeline.ClipSpec: the
flow stream of a two-stream network) and the motion experiments use
(experiments/motion: rotation_sense.py checks the sense of rotation with it). The DFF
engine's DIS mode (keras_video.serving.streaming.dis_flow) computes a different flow: from each
frame back to its key frame, in FlowWarp's convention.

The pipeline hands flow on as uint8 (`quantize`), as the two-stream literature and
mmaction2 store it (denseflow's flow_x / flow_y JPEGs): each component clipped to
[-bound, bound] pixels and mapped linearly onto 0..255, so 127.5 is no motion.
ImageNormalization("tf") (x / 127.5 - 1) then gives the model the flow in units of the
bound.
"""

import cv2
import numpy as np


def consecutive_flow(frames, preset=cv2.DISOPTICAL_FLOW_PRESET_MEDIUM):
    """uint8 frames [T, H, W, C] (RGB or gray) -> float32 [T - 1, H, W, 2]: flow t
    (dx, dy, in pixels) carries frame t to frame t + 1, i.e. the content at (x, y) in
    frame t is at (x + dx, y + dy) in frame t + 1."""
    if len(frames) < 2:
        raise ValueError(f"optical flow needs at least 2 frames, got {len(frames)}")
    gray = [f[..., 0] if f.shape[-1] == 1 else cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)
            for f in frames]
    dis = cv2.DISOpticalFlow_create(preset)
    return np.stack([dis.calc(np.ascontiguousarray(a), np.ascontiguousarray(b), None)
                     for a, b in zip(gray, gray[1:])])


def quantize(flow, bound):
    """float flow in pixels -> uint8: clip to [-bound, bound], map onto 0..255 (round
    half to even). A left-right mirror of quantized flow is 255 - q on dx."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))
    return np.rint(scaled).astype(np.uint8)


def dequantize(q, bound):
    """uint8 -> float32 flow in pixels (the inverse of `quantize` to bound / 127.5)."""
    return (q.astype(np.float32) / 127.5 - 1.0) * bound


def quantized_flow(frames, bound):
    """uint8 frames [T, H, W, C] -> quantized flow uint8 [T - 1, H, W, 2]."""
    return quantize(consecutive_flow(frames), bound)
