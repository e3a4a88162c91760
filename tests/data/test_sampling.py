import numpy as np
import pytest

from keras_video.data.sampling import frame_indices


def test_first_and_uniform():
    assert frame_indices(30, 5, "first").tolist() == [0, 1, 2, 3, 4]
    assert frame_indices(30, 5, "uniform").tolist() == [3, 9, 15, 21, 27]
    assert frame_indices(30, 30, "uniform").tolist() == list(range(30))


def test_short_video_is_looped():
    assert frame_indices(3, 7, "uniform").tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert frame_indices(3, 7, "first").tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert frame_indices(3, 4, "random", stride=2,
                         rng=np.random.default_rng(0)).tolist() == [0, 2, 1, 0]


def test_random_crop_with_stride_stays_inside():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        idx = frame_indices(50, 8, "random", stride=3, rng=rng)
        assert np.all(np.diff(idx) == 3)
        assert idx.min() >= 0 and idx.max() < 50
        starts.add(int(idx[0]))
    span = (8 - 1) * 3 + 1
    assert starts == set(range(50 - span + 1))  # every possible start is drawn


def test_center_crop_is_deterministic():
    assert frame_indices(50, 8, "center", stride=2).tolist() == list(range(17, 33, 2))


def test_bad_arguments():
    with pytest.raises(ValueError, match="no frames"):
        frame_indices(0, 4)
    with pytest.raises(ValueError, match="unknown sampling mode"):
        frame_indices(10, 4, "middle")
