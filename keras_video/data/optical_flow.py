"""Dense optical flow of a clip's consecutive frames, with OpenCV's DIS.

The flow the motion experiments read (experiments/motion: rotation_sense.py checks the
sense of rotation with it, flow_stream.py trains r3d18 on it). The DFF engine's DIS
mode (keras_video.streaming.dis_flow) computes a different flow: from each frame back
to its key frame, in FlowWarp's convention.
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
