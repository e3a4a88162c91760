"""OpenCV decoding of real codecs, frame folders, and every bad-input case."""

import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import SEED_CLIPS, VIDEOS
from keras_video.data import decode, sampling
from keras_video.data.decode import BadSampleError


@pytest.mark.parametrize("name, frames, shape", [
    ("h264_320x240_25fps_75f.mp4", 75, (240, 320)),
    ("vp9_320x240_25fps_50f.webm", 50, (240, 320)),
    ("xvid_320x240_25fps_100f.avi", 100, (240, 320)),
    ("portrait_h264_360x640_30fps_60f.mp4", 60, (640, 360)),
])
def test_real_codecs(name, frames, shape):
    path = os.path.join(VIDEOS, name)
    assert decode.count_frames(path) == frames
    every = decode.read_all_frames(path)
    assert every.shape == (frames, *shape, 3) and every.dtype == np.uint8
    clip = decode.read_clip(path, 16, "uniform", size=(112, 112))
    assert clip.shape == (16, 112, 112, 3)


def test_frames_are_rgb(tmp_path):
    from conftest import write_video

    red = np.zeros((4, 32, 32, 3), np.uint8)
    red[..., 0] = 220
    clip = decode.read_clip(write_video(tmp_path / "red.avi", red), 4, "first")
    assert clip[..., 0].mean() > 180 and clip[..., 2].mean() < 40
    gray = decode.read_clip(str(tmp_path / "red.avi"), 4, "first", grayscale=True)
    assert gray.shape == (4, 32, 32, 1)


def test_uniform_sampling_picks_the_right_frames():
    path = os.path.join(VIDEOS, "h264_320x240_25fps_75f.mp4")
    every = decode.read_all_frames(path)
    clip = decode.read_clip(path, 5, "uniform")
    np.testing.assert_array_equal(clip, every[[7, 22, 37, 52, 67]])


def test_short_video_is_looped():
    path = os.path.join(VIDEOS, "short_h264_5f.mp4")
    clip = decode.read_clip(path, 16, "uniform")
    assert clip.shape[0] == 16
    np.testing.assert_array_equal(clip[5], clip[0])
    np.testing.assert_array_equal(clip[15], clip[0])


def test_frame_folder_natural_order():
    folder = os.path.join(SEED_CLIPS, "sample_1")
    files = decode.list_frames(folder)
    assert [os.path.basename(f) for f in files[8:11]] == ["o (9).jpg", "o (10).jpg",
                                                          "o (11).jpg"]
    clip = decode.read_clip(folder, 30, "first")
    expected = cv2.cvtColor(cv2.imread(os.path.join(folder, "o (10).jpg")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(clip[9], expected)


@pytest.mark.parametrize("name, problem", [
    ("truncated_faststart_h264.mp4", "truncated or corrupt: decoding stopped at frame 34"),
    ("truncated_h264.mp4", "cannot open it as a video"),
    ("empty.mp4", "file is empty"),
    ("not_a_video.avi", "cannot open it as a video"),
    ("missing.mp4", "does not exist"),
])
def test_bad_videos_name_the_file_and_problem(name, problem):
    path = os.path.join(VIDEOS, name)
    with pytest.raises(BadSampleError) as info:
        decode.read_clip(path, 75, "uniform")
    assert info.value.path == path
    assert problem in str(info.value) and str(info.value).startswith(path)


def test_truncated_video_is_fine_when_only_its_start_is_needed():
    path = os.path.join(VIDEOS, "truncated_faststart_h264.mp4")
    assert decode.read_clip(path, 16, "first").shape == (16, 240, 320, 3)


def test_zero_frame_video(tmp_path):
    path = str(tmp_path / "zero.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 15, (32, 32))
    writer.release()
    with pytest.raises(BadSampleError) as info:
        decode.read_clip(path, 4)
    assert info.value.path == path


def test_bad_frame_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadSampleError, match="no image files"):
        decode.read_clip(str(empty), 4)
    with pytest.raises(BadSampleError, match="does not exist"):
        decode.read_clip(str(tmp_path / "nowhere"), 4)
    broken = tmp_path / "broken"
    shutil.copytree(os.path.join(SEED_CLIPS, "sample_1"), broken)
    (broken / "o (3).jpg").write_bytes(b"not a jpeg")
    with pytest.raises(BadSampleError) as info:
        decode.read_clip(str(broken), 30, "first")
    assert info.value.path == str(broken / "o (3).jpg")
    assert "unreadable image" in info.value.problem


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255 ** 2 / max(mse, 1e-12))


def _full_decode(path, num_frames, size, grayscale=False, reduce_first=1):
    """What read_clip gave before reduced JPEG decoding: every frame at full size, one
    INTER_AREA resize (reduce_first=N: an exact INTER_AREA to 1/N size first)."""
    frames = decode.read_all_frames(path, grayscale=grayscale)
    frames = frames[sampling.frame_indices(len(frames), num_frames, "uniform")]
    if reduce_first > 1:
        reduced = (frames.shape[1] // reduce_first, frames.shape[2] // reduce_first)
        frames = np.stack([decode.resize_frame(f, reduced) for f in frames])
    out = np.stack([decode.resize_frame(f, size) for f in frames])
    return out if out.ndim == 4 else out[..., None]


@pytest.mark.parametrize("size", [(64, 64), (48, 40), (100, 100)])
def test_reduced_jpeg_decode_is_as_close_to_one_area_resize_as_an_exact_halving(
        size, oscillation_videos):
    # Tolerance: a 1/2-scale JPEG decode is a 2x2 box average to within 2 levels (see the
    # 112x112 test below); the INTER_AREA resize that follows is then a second box filter,
    # and two box filters in a row are not one: thin lines land up to a fraction of an
    # output pixel elsewhere (up to ~70 levels on the 1-px lines of these clips). That is
    # the price of any two-stage resize, exact 2x area halvings included, so the fast
    # path must be within 0.5 dB PSNR and 0.1 levels mean of those halvings +
    # INTER_AREA (measured: within 0.13 dB and 0.06), and at least 30 dB from the
    # one-pass INTER_AREA (measured 34-36 dB; INTER_LINEAR, the seed's resize, is 25 dB
    # on these clips).
    paths = [os.path.join(oscillation_videos, f"clip_{k:05d}.avi") for k in (0, 5)]
    paths.append(os.path.join(SEED_CLIPS, "sample_1"))  # a folder of the seed's .jpg
    reduction = decode.jpeg_reduction((224, 224), size)
    assert reduction == (4 if size == (48, 40) else 2)
    for path in paths:
        fast = decode.read_clip(path, 30, "uniform", size=size)
        exact = _full_decode(path, 30, size)
        halved = _full_decode(path, 30, size, reduce_first=reduction)
        assert fast.shape == exact.shape == (30, *size, 3)
        assert not np.array_equal(fast, exact)  # the reduced decode did run
        assert _psnr(fast, exact) >= max(30.0, _psnr(halved, exact) - 0.5), path
        assert np.abs(fast.astype(int) - exact).mean() <= \
            np.abs(halved.astype(int) - exact).mean() + 0.1, path


def test_reduced_jpeg_decode_at_an_exact_factor(oscillation_videos):
    path = os.path.join(oscillation_videos, "clip_00001.avi")
    for grayscale in (False, True):
        fast = decode.read_clip(path, 30, "uniform", size=(112, 112), grayscale=grayscale)
        exact = _full_decode(path, 30, (112, 112), grayscale)
        assert np.abs(fast.astype(int) - exact).max() <= 3


def test_mjpeg_packets_decode_only_the_sampled_frames(oscillation_videos):
    path = os.path.join(oscillation_videos, "clip_00002.avi")
    every = decode.read_all_frames(path)
    ffmpeg = _full_decode(path, 30, None)
    assert np.abs(every.astype(int) - ffmpeg).max() <= 1  # libjpeg vs FFmpeg's decoder
    rng = np.random.default_rng(0)
    clip = decode.read_clip(path, 8, "random", stride=3, rng=rng)
    start = np.random.default_rng(0).integers(0, 30 - 22 + 1)
    np.testing.assert_array_equal(clip, every[start + 3 * np.arange(8)])
    assert len(decode.jpeg_packets(path)) == 30


@pytest.mark.parametrize("name", ["h264_320x240_25fps_75f.mp4",
                                  "vp9_320x240_25fps_50f.webm",
                                  "xvid_320x240_25fps_100f.avi"])
def test_other_codecs_take_the_ffmpeg_path(name, monkeypatch):
    path = os.path.join(VIDEOS, name)
    assert decode.jpeg_packets(path) is None
    clip = decode.read_clip(path, 8, "uniform", size=(56, 56))
    monkeypatch.setattr(decode, "REDUCED_JPEG", False)
    np.testing.assert_array_equal(clip, decode.read_clip(path, 8, "uniform", size=(56, 56)))


def test_jpeg_size_reads_the_header():
    image = np.zeros((37, 53, 3), np.uint8)
    assert decode.jpeg_size(cv2.imencode(".jpg", image)[1]) == (37, 53)
    assert decode.jpeg_size(cv2.imencode(".png", image)[1].tobytes()) is None
    assert decode.jpeg_reduction((240, 320), (112, 112)) == 2
    assert decode.jpeg_reduction((240, 320), (64, 64)) == 2  # 1/4 is 60 high
    assert decode.jpeg_reduction((720, 1280), (64, 64)) == 8
    assert decode.jpeg_reduction((224, 224), (128, 171)) == 1


def test_truncated_mjpeg_names_the_file(tmp_path, oscillation_videos):
    data = open(os.path.join(oscillation_videos, "clip_00003.avi"), "rb").read()
    path = str(tmp_path / "cut.avi")
    with open(path, "wb") as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(BadSampleError) as info:
        decode.read_clip(path, 30, "uniform", size=(64, 64))
    assert info.value.path == path


def test_iter_video_frames_names_a_file_it_cannot_open():
    from keras_video.data import decode

    for name, problem in (("empty.mp4", "file is empty"), ("not_a_video.avi", "cannot open")):
        with pytest.raises(decode.BadSampleError, match=problem) as error:
            next(decode.iter_video_frames(os.path.join(VIDEOS, name)))
        assert error.value.path.endswith(name)
