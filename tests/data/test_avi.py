"""keras_video.data.avi: the JPEG packets of plain MJPEG AVIs, None for anything else,
and the clip read from them bit-identical to the FFmpeg-demuxed path."""

import os
import struct

import cv2
import numpy as np
import pytest

from conftest import VIDEOS
from keras_video.data import avi, decode


def _ffmpeg_packets(path):
    cap = cv2.VideoCapture(path)
    assert cap.set(cv2.CAP_PROP_FORMAT, -1)
    packets = []
    while cap.grab():
        packets.append(cap.retrieve()[1].tobytes())
    cap.release()
    return packets


def _video(oscillation_videos, k=0):
    return os.path.join(oscillation_videos, f"clip_{k:05d}.avi")


def test_packets_are_the_ones_ffmpeg_demuxes(oscillation_videos):
    path = _video(oscillation_videos)
    shape, packets = avi.mjpeg_packets(path)
    assert shape == (224, 224)
    assert [p.tobytes() for p in packets] == _ffmpeg_packets(path)


def test_opencv_written_avi_with_odd_frame_size(tmp_path):
    path = str(tmp_path / "odd.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 15, (37, 21))
    rng = np.random.default_rng(0)
    for _ in range(7):
        writer.write(rng.integers(0, 255, (21, 37, 3), dtype=np.uint8))
    writer.release()
    shape, packets = avi.mjpeg_packets(path)
    cap = cv2.VideoCapture(path)  # OpenCV's writer keeps an even size: 36 x 20
    assert shape == (cap.get(cv2.CAP_PROP_FRAME_HEIGHT), cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    cap.release()
    assert len(packets) == 7 and decode.jpeg_size(packets[0]) == shape
    assert [p.tobytes() for p in packets] == _ffmpeg_packets(path)


@pytest.mark.parametrize("name", [
    "xvid_320x240_25fps_100f.avi",  # an AVI of another codec
    "h264_320x240_25fps_75f.mp4", "vp9_320x240_25fps_50f.webm",
    "not_a_video.avi", "empty.mp4", "missing.mp4",
])
def test_other_files_are_left_to_ffmpeg(name):
    assert avi.mjpeg_packets(os.path.join(VIDEOS, name)) is None


def _edited(tmp_path, data, name="edited.avi"):
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_damaged_or_unusual_layouts_are_left_to_ffmpeg(tmp_path, oscillation_videos):
    data = open(_video(oscillation_videos, 1), "rb").read()
    assert avi.mjpeg_packets(_edited(tmp_path, data)) is not None
    # Cut short: its last chunks are missing.
    assert avi.mjpeg_packets(_edited(tmp_path, data[:len(data) // 2])) is None
    # A second RIFF follows (OpenDML's AVIX, files over 1 GB).
    assert avi.mjpeg_packets(_edited(tmp_path, data + b"RIFF\x04\x00\x00\x00AVIX")) is None
    # The stream header declares one frame more than the file holds.
    movi = data.index(b"movi")
    strh = data.index(b"strh")
    length = struct.unpack_from("<I", data, strh + 8 + 32)[0]
    more = bytearray(data)
    struct.pack_into("<I", more, strh + 8 + 32, length + 1)
    assert avi.mjpeg_packets(_edited(tmp_path, bytes(more))) is None
    # A video chunk of size 0 (a dropped frame).
    first = data.index(b"00dc", movi)
    size = struct.unpack_from("<I", data, first + 4)[0]
    dropped = bytearray(data[:first + 4] + b"\x00\x00\x00\x00" + b"JUNK"
                        + struct.pack("<I", size - 8 + (size & 1))
                        + data[first + 8 + 8:])
    assert avi.mjpeg_packets(_edited(tmp_path, bytes(dropped))) is None


def test_zero_frame_avi_is_left_to_ffmpeg(tmp_path):
    path = str(tmp_path / "zero.avi")
    cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 15, (32, 32)).release()
    assert avi.mjpeg_packets(path) is None


@pytest.mark.parametrize("size, grayscale", [
    ((64, 64), False), ((64, 64), True), ((112, 112), False), (None, False),
    ((300, 200), False), ((20, 30), True)])
def test_clip_equals_the_ffmpeg_demuxed_path(oscillation_videos, monkeypatch, size,
                                             grayscale):
    path = _video(oscillation_videos, 2)
    rng = np.random.default_rng(5)
    fast = decode.read_clip(path, 40, "random", 2, rng, size, grayscale)  # looped
    every = decode.read_all_frames(path, size, grayscale)
    opened = []
    monkeypatch.setattr(avi, "mjpeg_packets", lambda p: opened.append(p))
    rng = np.random.default_rng(5)
    slow = decode.read_clip(path, 40, "random", 2, rng, size, grayscale)
    assert opened == [path]
    assert fast.dtype == slow.dtype == np.uint8
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(every, decode.read_all_frames(path, size, grayscale))


def test_plain_mjpeg_avi_never_opens_ffmpeg(oscillation_videos, monkeypatch):
    def no_ffmpeg(*args):
        raise AssertionError("cv2.VideoCapture opened")

    monkeypatch.setattr(cv2, "VideoCapture", no_ffmpeg)
    clip = decode.read_clip(_video(oscillation_videos, 3), 16, "uniform", size=(64, 64))
    assert clip.shape == (16, 64, 64, 3)
