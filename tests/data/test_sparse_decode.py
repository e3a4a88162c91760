"""Reading clips by seeking to the key frame before them (keras_video.data.decode with
PyAV): the frames are exactly those of a decode from the start, fewer frames are decoded,
long videos can be read window by window, and broken files fail as before."""

import os
import sys
from fractions import Fraction

import numpy as np
import pytest

from conftest import VIDEOS
from keras_video.data import decode
from keras_video.data.decode import BadSampleError, DecodeStats

av = pytest.importorskip("av")

SIZE = (48, 64)  # height, width
N = 96


def _frames(n, seed=0):
    """n RGB frames of a moving texture, every one different from the others."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE[0], 0:SIZE[1]]
    for t in range(n):
        base = np.stack([128 + 90 * np.sin(xx / 5 + t / 3),
                         128 + 90 * np.cos(yy / 4 - t / 5), (xx + yy + 5 * t) % 256], -1)
        yield np.clip(base + rng.integers(-25, 26, base.shape), 0, 255).astype(np.uint8)


def _write(path, codec, options=None, n=N, pix_fmt="yuv420p", container_options=None,
           drop=(), size=SIZE):
    """A video made by PyAV; `drop`: frame numbers left out, the others keeping their
    timestamps (a gap, as a dropped frame leaves)."""
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=25, options=options or {})
        stream.height, stream.width = size
        stream.pix_fmt = pix_fmt
        for k, frame in enumerate(_frames(n)):
            frame = np.ascontiguousarray(frame[:size[0], :size[1]])
            if k in drop:
                continue
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = k, Fraction(1, 25)
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return str(path)


# Each codec in decode.SEEK_CODECS, with B-frames where the codec has them, key frames
# every 12 frames (an open GOP for MPEG-2), in the containers that carry it.
MADE = {
    "h264_bframes.mp4": ("libx264", {"x264-params": "keyint=12:min-keyint=12:bframes=3:"
                                                    "scenecut=0", "preset": "fast"}),
    "h264_bframes.mkv": ("libx264", {"x264-params": "keyint=12:min-keyint=12:bframes=3"}),
    "h264_yuv444p.mp4": ("libx264", {"x264-params": "keyint=20"}),
    "h264_yuvj420p.mp4": ("libx264", {"x264-params": "keyint=20"}),
    "mpeg4_bframes.avi": ("mpeg4", {"g": "12", "bf": "2"}),
    "mpeg4_bframes.mp4": ("mpeg4", {"g": "12", "bf": "2"}),
    "vp9.webm": ("libvpx-vp9", {"g": "12", "deadline": "realtime", "cpu-used": "8"}),
    "vp8.webm": ("libvpx", {"g": "12", "deadline": "realtime"}),
    "mpeg2_open_gop.mkv": ("mpeg2video", {"g": "12", "bf": "2"}),
    "hevc.mp4": ("libx265", {"x265-params": "keyint=12:min-keyint=12:log-level=none"}),
    # Odd sizes: swscale then upsamples the chroma with the filter asked for.
    "vp9_odd_size.webm": ("libvpx-vp9", {"g": "12", "deadline": "realtime",
                                         "cpu-used": "8"}),
    "mpeg4_odd_size.avi": ("mpeg4", {"g": "12", "bf": "2"}),
}
ODD = (47, 63)
FIXTURES = ["h264_320x240_25fps_75f.mp4", "portrait_h264_360x640_30fps_60f.mp4",
            "short_h264_5f.mp4", "vp9_320x240_25fps_50f.webm",
            "xvid_320x240_25fps_100f.avi"]


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sparse")
    paths = {}
    for name, (codec, options) in MADE.items():
        pix_fmt = name.split("_")[-1].split(".")[0] if "_yuv" in name else "yuv420p"
        size = ODD if "odd" in name else SIZE
        paths[name] = _write(folder / name, codec, options, pix_fmt=pix_fmt, size=size)
    return paths


def _path(made, name):
    return made[name] if name in made else os.path.join(VIDEOS, name)


def _from_the_start(path, **kw):
    """What OpenCV gives decoding every frame (the reference): RGB [T, H, W, C]."""
    return decode.read_all_frames(path, **kw)


@pytest.mark.parametrize("name", list(MADE) + FIXTURES)
def test_crops_equal_decoding_from_the_start(made, name):
    path = _path(made, name)
    every = _from_the_start(path)
    assert decode.count_frames(path) == len(every)
    crops = [("random", 1)] * 4 + [("random", 2)] * 4 + [("uniform", 1), ("center", 2)]
    for seed, (mode, stride) in enumerate(crops):
        stats = DecodeStats()
        clip = decode.read_video(path, 16, mode, stride, np.random.default_rng(seed),
                                 stats=stats)
        idx = decode.sampling.frame_indices(len(every), 16, mode, stride,
                                            np.random.default_rng(seed))
        assert stats.method == "seek", (name, stats)
        np.testing.assert_array_equal(clip, every[idx], err_msg=f"{name} {mode} {idx}")


@pytest.mark.parametrize("name", ["h264_bframes.mp4", "mpeg4_bframes.avi",
                                  "vp9_odd_size.webm"])
@pytest.mark.parametrize("frame_threads", [False, True])
def test_resized_and_gray_clips_equal_the_opencv_path(made, name, frame_threads,
                                                      monkeypatch):
    path = made[name]
    monkeypatch.setattr(decode, "SEEK_FRAME_THREADS", frame_threads)
    idx = [70, 3, 70, 95, 40, 41, 42]  # any order, repeats
    for kw in ({"size": (32, 40)}, {"size": (100, 90), "grayscale": True},
               {"grayscale": True}):
        stats = DecodeStats()
        fast = decode.read_frames(path, idx, stats=stats, **kw)
        assert stats.method == "seek"
        monkeypatch.setattr(decode, "SEEK", False)
        slow = decode.read_frames(path, idx, **kw)
        monkeypatch.setattr(decode, "SEEK", True)
        np.testing.assert_array_equal(fast, slow, err_msg=f"{name} {kw}")


def test_seeking_decodes_fewer_frames_than_the_crop_ends_at(made):
    path = made["h264_bframes.mp4"]  # key frames 0, 12, .., 84
    every = _from_the_start(path)
    for start in (50, 61, 74, 80):
        stats = DecodeStats()
        clip = decode.read_frames(path, range(start, start + 16), stats=stats)
        np.testing.assert_array_equal(clip, every[start:start + 16])
        assert stats.method == "seek" and stats.seeks == 1
        # Frame 0 (on the file's first read only), the GOP up to the crop, the crop,
        # and some slack: fewer than the crop's end index.
        key = start // 12 * 12
        assert stats.decoded <= 4 + (start - key) + 16 + 4 < start + 16, stats
    stats = DecodeStats()
    decode.read_frames(path, range(16), stats=stats)
    assert stats.seeks == 0 and stats.probes == 0  # a clip at the start just decodes
    # Frames far apart: each run from its own key frame, not the whole video.
    stats = DecodeStats()
    clip = decode.read_frames(path, [5, 30, 55, 80], stats=stats)
    np.testing.assert_array_equal(clip, every[[5, 30, 55, 80]])
    assert stats.seeks == 3 and stats.decoded < 60, stats


def test_a_video_with_one_key_frame_is_decoded_through(tmp_path):
    path = _write(tmp_path / "one_gop.mp4", "libx264",
                  {"x264-params": "keyint=500:scenecut=0"})
    every = _from_the_start(path)
    stats = DecodeStats()
    clip = decode.read_frames(path, [10, 40, 70, 90], stats=stats)
    np.testing.assert_array_equal(clip, every[[10, 40, 70, 90]])
    # The key-frame look-ups find none ahead of the decoder: no seek back to frame 0.
    assert stats.method == "seek" and stats.seeks == 0 and stats.decoded <= N, stats


@pytest.mark.parametrize("window, stride, step", [(8, 20, 1), (8, 5, 1), (6, 30, 2),
                                                  (16, 16, 1)])
def test_windows_are_slices_of_the_full_decode(made, window, stride, step):
    path = made["h264_bframes.mp4"]
    every = _from_the_start(path)
    stats = DecodeStats()
    windows = list(decode.iter_video_windows(path, window, stride, step, stats=stats))
    span = (window - 1) * step + 1
    assert [s for s, _ in windows] == list(range(0, N - span + 1, stride))
    for start, clip in windows:
        assert clip.dtype == np.uint8 and clip.shape == (window, *SIZE, 3)
        np.testing.assert_array_equal(clip, every[start:start + span:step])
    assert stats.method == "seek"
    if stride - span > decode.SEEK_MIN_GAP:
        assert stats.seeks > 0 and stats.decoded < N


def test_windows_resized_short_and_without_seeking(made, monkeypatch):
    path = made["vp9.webm"]
    fast = list(decode.iter_video_windows(path, 10, 25, size=(24, 32), grayscale=True))
    monkeypatch.setattr(decode, "SEEK", False)
    stats = DecodeStats()
    slow = list(decode.iter_video_windows(path, 10, 25, size=(24, 32), grayscale=True,
                                          stats=stats))
    assert stats.method == "opencv"
    assert [s for s, _ in fast] == [s for s, _ in slow] == [0, 25, 50, 75]
    for (_, a), (_, b) in zip(fast, slow):
        assert a.shape == (10, 24, 32, 1)
        np.testing.assert_array_equal(a, b)
    monkeypatch.setattr(decode, "SEEK", True)
    short = os.path.join(VIDEOS, "short_h264_5f.mp4")
    (start, clip), = decode.iter_video_windows(short, 8, 4)
    every = _from_the_start(short)
    assert start == 0
    np.testing.assert_array_equal(clip, every[np.arange(8) % 5])


def _truncate(path, fraction):
    stem, ext = os.path.splitext(path)
    out = f"{stem}_cut{ext}"
    data = open(path, "rb").read()
    with open(out, "wb") as f:
        f.write(data[:int(len(data) * fraction)])
    return out


def test_truncated_files_raise_bad_sample_error(tmp_path, made):
    # Index first (faststart): the file opens and declares frames that are not there;
    # the seeking reader finds the key frame before them past the end of the file.
    full = _write(tmp_path / "fast.mp4", "libx264", {"x264-params": "keyint=12"},
                  container_options={"movflags": "faststart"})
    cut = _truncate(full, 0.5)
    stats = DecodeStats()
    with pytest.raises(BadSampleError) as info:
        decode.read_frames(cut, range(N - 16, N), stats=stats)
    assert info.value.path == cut and "truncated or corrupt" in info.value.problem
    assert stats.probes >= 1 and stats.method == "opencv"  # it tried, then OpenCV said
    with pytest.raises(BadSampleError) as info:
        list(decode.iter_video_windows(cut, 8, 30))
    assert info.value.path == cut and "truncated or corrupt" in info.value.problem
    stats = DecodeStats()
    np.testing.assert_array_equal(decode.read_frames(cut, range(4, 12), stats=stats),
                                  _from_the_start(full)[4:12])
    assert stats.method == "seek"
    # Index last (AVI): what is left of the file fails as it did before.
    cut = _truncate(made["mpeg4_bframes.avi"], 0.5)
    with pytest.raises(BadSampleError) as info:
        decode.read_frames(cut, range(40, 50))
    assert info.value.path == cut and "truncated or corrupt" in info.value.problem
    fixture = os.path.join(VIDEOS, "truncated_faststart_h264.mp4")
    with pytest.raises(BadSampleError, match="decoding stopped at frame 34"):
        decode.read_frames(fixture, [60, 61])
    with pytest.raises(BadSampleError, match="file is empty"):
        list(decode.iter_video_windows(os.path.join(VIDEOS, "empty.mp4"), 4, 4))


def test_a_dropped_frame_falls_back_to_decoding_from_the_start(tmp_path):
    # Frame 30 is missing: the 31st frame decoded has the timestamp of frame 31, so the
    # timestamp grid no longer names frames as a decode from the start counts them.
    path = _write(tmp_path / "gap.mp4", "libx264", {"x264-params": "keyint=12"}, drop={30})
    every = _from_the_start(path)
    assert len(every) == N - 1
    stats = DecodeStats()
    clip = decode.read_frames(path, range(60, 70), stats=stats)
    assert stats.method == "opencv"
    np.testing.assert_array_equal(clip, every[60:70])


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_an_off_grid_timestamp_leaves_the_file_to_opencv(tmp_path, container):
    # Frame 40 is shown half a frame late: its timestamp does not name it. MP4 indexes
    # every frame, so the reader sees that on opening the file; Matroska indexes key
    # frames only, so clips away from frame 40 are read by seeking until the reader
    # meets it; from then on the file is decoded from the start.
    path = str(tmp_path / f"jitter.{container}")
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"x264-params": "keyint=12"})
        stream.height, stream.width = SIZE
        stream.codec_context.time_base = Fraction(1, 50)
        for k, frame in enumerate(_frames(N)):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = 2 * k + (k == 40), Fraction(1, 50)
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    every = _from_the_start(path)
    first = "seek" if container == "mkv" else "opencv"
    for frames, method in ((range(60, 76), first), (range(30, 50), "opencv"),
                           (range(60, 76), "opencv")):
        stats = DecodeStats()
        np.testing.assert_array_equal(decode.read_frames(path, frames, stats=stats),
                                      every[frames])
        assert stats.method == method, (frames, stats)


@pytest.mark.parametrize("degrees, hflip", [(90, False), (0, True)])
def test_a_turned_video_is_left_to_opencv(tmp_path, degrees, hflip):
    # OpenCV applies the display matrix's rotation to the frames; PyAV does not.
    path = str(tmp_path / "turned.mp4")
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"x264-params": "keyint=12"})
        stream.height, stream.width = SIZE
        stream.set_display_rotation(degrees, hflip=hflip)
        for frame in _frames(48):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    every = _from_the_start(path)
    stats = DecodeStats()
    np.testing.assert_array_equal(decode.read_frames(path, range(30, 40), stats=stats),
                                  every[30:40])
    assert stats.method == "opencv"


def test_mpeg_ts_is_left_to_opencv(tmp_path):
    # MPEG-TS has no index: FFmpeg's seek lands on any packet, not a key frame.
    path = _write(tmp_path / "b.ts", "libx264", {"x264-params": "keyint=12"})
    every = _from_the_start(path)
    for _ in range(2):
        stats = DecodeStats()
        np.testing.assert_array_equal(decode.read_frames(path, range(60, 76), stats=stats),
                                      every[60:76])
        assert stats.method == "opencv"
    assert stats.probes == 0  # the second read knew


def test_without_pyav_nothing_changes(made, monkeypatch):
    path = made["h264_bframes.mp4"]
    with_av = decode.read_video(path, 16, "random", 2, np.random.default_rng(5))
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    stats = DecodeStats()
    without = decode.read_video(path, 16, "random", 2, np.random.default_rng(5),
                                stats=stats)
    assert stats.method == "opencv"
    np.testing.assert_array_equal(with_av, without)
    windows = list(decode.iter_video_windows(path, 8, 40, stats=stats))
    assert stats.method == "opencv" and [s for s, _ in windows] == [0, 40, 80]


def test_mjpeg_keeps_its_own_path(tmp_path):
    from conftest import write_video

    frames = np.stack(list(_frames(20)))
    path = write_video(tmp_path / "m.avi", frames)
    stats = DecodeStats()
    decode.read_video(path, 8, "random", rng=np.random.default_rng(0), stats=stats)
    assert stats.method == "opencv"  # JPEG packets, only the picked ones decoded
