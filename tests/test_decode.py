"""OpenCV decoding of real codecs, frame folders, and every bad-input case."""

import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import SEED_CLIPS, VIDEOS
from keras_video.data import decode
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
