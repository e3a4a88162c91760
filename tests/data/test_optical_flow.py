"""keras_video.data.optical_flow: DIS flow of consecutive frames, in pixels, (dx, dy)."""

import cv2
import numpy as np
import pytest

from conftest import moving_texture
from keras_video.data import optical_flow


@pytest.mark.parametrize("shift", [(2, 0), (0, -3), (1, 2)])
def test_flow_is_the_motion_in_pixels(shift):
    frames = moving_texture(shift)
    flow = optical_flow.consecutive_flow(frames)
    assert flow.shape == (2, 64, 64, 2) and flow.dtype == np.float32
    inner = flow[:, 8:-8, 8:-8]  # away from the borders, where the roll wraps
    np.testing.assert_allclose(np.median(inner, axis=(0, 1, 2)), shift, atol=0.1)


def test_gray_frames_and_too_few_frames():
    frames = moving_texture((2, 1))
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])[..., None]
    np.testing.assert_array_equal(optical_flow.consecutive_flow(gray),
                                  optical_flow.consecutive_flow(frames))
    with pytest.raises(ValueError, match="at least 2 frames"):
        optical_flow.consecutive_flow(frames[:1])
