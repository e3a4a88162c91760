"""keras_video.plots: matplotlib figures as RGB arrays that show their data, written as
PNGs that read back the same."""

import cv2
import numpy as np
import pytest

from keras_video import plots


def _ink(image):
    """Fraction of pixels that are not white."""
    return float(np.mean(np.any(image < 250, axis=-1)))


def test_scatter_plot_is_an_rgb_picture_that_depends_on_the_points():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.5, 5.0, 200)
    perfect = plots.scatter_plot(truth, truth)
    noisy = plots.scatter_plot(truth, truth + rng.normal(0, 1.0, 200))
    assert perfect.dtype == np.uint8 and perfect.ndim == 3 and perfect.shape[-1] == 3
    assert perfect.shape == noisy.shape
    assert 0.01 < _ink(perfect) < 0.5
    assert np.abs(perfect.astype(int) - noisy).max() > 100  # points moved off the line


def test_confusion_image_darkens_with_the_count():
    diagonal = plots.confusion_image(np.diag([10, 10, 10]), ["a", "b", "c"])
    uniform = plots.confusion_image(np.full((3, 3), 10), ["a", "b", "c"])
    # A perfect classifier's matrix has saturated (dark blue) cells on the diagonal;
    # the uniform one (a third of each row per cell) has none: only its colour bar
    # reaches that blue.
    def dark_blue(image):
        r, g, b = np.moveaxis(image.astype(int), -1, 0)
        return int(np.sum((b > 90) & (b - r > 60) & (r < 40)))

    assert dark_blue(diagonal) > 10 * dark_blue(uniform)


def test_tradeoff_and_timeline_plots_draw_every_series(tmp_path):
    one = plots.tradeoff_plot({"DFF": ([1, 2, 3], [70, 69, 68])}, "fps", "mAP", "t",
                              {"DFF": ["k=1", "k=2", "k=3"]})
    two = plots.tradeoff_plot({"DFF": ([1, 2, 3], [70, 69, 68]),
                               "per-frame": ([1], [70])}, "fps", "mAP", "t")
    assert one.shape == two.shape and np.any(one != two)
    times = np.arange(10.0)
    scores = np.eye(3)[np.arange(10) % 3] * 0.9
    timeline = plots.scores_over_time(times, scores, ["x", "y", "z"],
                                      segments=[(0.0, 3.0, 0)])
    assert _ink(timeline) > 0.01
    path = plots.save_png(timeline, tmp_path / "t.png")
    np.testing.assert_array_equal(cv2.imread(path)[..., ::-1], timeline)


def test_save_png_names_the_path_it_cannot_write(tmp_path):
    with pytest.raises(OSError, match="missing/t.png: could not write the picture"):
        plots.save_png(np.zeros((4, 4, 3), np.uint8), tmp_path / "missing" / "t.png")
