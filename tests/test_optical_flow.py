"""keras_video.data.optical_flow: DIS flow of consecutive frames, in pixels, (dx, dy)."""

import cv2
import numpy as np
import pytest

from keras_video.data import optical_flow


def _moving_texture(shift, frames=3, size=64):
    """RGB frames of a smooth random texture moving by `shift` (dx, dy) px a frame."""
    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, (size // 4, size // 4, 3)).astype(np.float32)
    texture = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    dx, dy = shift
    return np.stack([np.roll(texture, (t * dy, t * dx), axis=(0, 1))
                     for t in range(frames)]).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("shift", [(2, 0), (0, -3), (1, 2)])
def test_flow_is_the_motion_in_pixels(shift):
    frames = _moving_texture(shift)
    flow = optical_flow.consecutive_flow(frames)
    assert flow.shape == (2, 64, 64, 2) and flow.dtype == np.float32
    inner = flow[:, 8:-8, 8:-8]  # away from the borders, where the roll wraps
    np.testing.assert_allclose(np.median(inner, axis=(0, 1, 2)), shift, atol=0.1)


def test_gray_frames_and_too_few_frames():
    frames = _moving_texture((2, 1))
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])[..., None]
    np.testing.assert_array_equal(optical_flow.consecutive_flow(gray),
                                  optical_flow.consecutive_flow(frames))
    with pytest.raises(ValueError, match="at least 2 frames"):
        optical_flow.consecutive_flow(frames[:1])
