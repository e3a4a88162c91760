"""Reading clips from disk with OpenCV: video files and folders of numbered images.

Every problem with an input file raises `BadSampleError`, whose message names the file
and says what is wrong; nothing here returns silently wrong data. Frames come out RGB
(OpenCV decodes BGR; the ResNet+LSTM seed fed BGR to an RGB network, we never do).

JPEG frames (folders of .jpg files, and MJPEG videos, whose packets are JPEG images)
are decoded at reduced scale when the clip is much smaller than the frame: libjpeg's
scaled inverse DCT (cv2.IMREAD_REDUCED_COLOR_2/4/8) gives the frame at 1/N of its size
for less work than the full decode, and the INTER_AREA resize that remains is small.
N is the largest of 8, 4, 2 that leaves the frame at least the clip's size
(`jpeg_reduction`). An MJPEG video is read as raw packets, so frames the clip does not
sample are never decoded at all; in a plain MJPEG .avi (what our generators write)
keras_video.data.avi finds the packets without opening FFmpeg, and they are decoded
straight to RGB into the clip (bit-identical to the FFmpeg-demuxed path). The result
is close to, not bit-identical with, the full decode followed by one INTER_AREA
resize: a 1/N DCT-domain scale is a 2x2 (NxN) box average to within 2 levels, but two
box filters in a row are not one box filter, so thin edges move by up to a fraction
of an output pixel (tests/test_decode.py states the tolerance). `REDUCED_JPEG = False`
turns this off.

Other codecs (H.264, VP9, Xvid, ...) need every frame since the last key frame, so a
clip that starts late in the video is read by seeking (`SEEK`, through PyAV, an
optional dependency): FFmpeg jumps to the key frame at or before the clip's first frame
and decodes forward from there, instead of decoding the video from its first frame.
Frame i is the i-th frame a decode from the start puts out, as OpenCV counts them; the
seeking reader names it by its timestamp on the stream's constant frame-rate grid (time
base, average rate, the first frame's pts), and checks that the grid holds: the
duration is the declared frames, the container's index is on the grid (every frame in
MP4 and AVI, the key frames in Matroska), and every frame decoded is the one due next.
Where anything does not hold (PyAV missing, a codec or pixel format the tests have not
shown to decode identically in PyAV and OpenCV, a variable frame rate, a rotated video,
MPEG-TS, whose seeks do not land on key frames, a damaged file), the clip is decoded
from the start by OpenCV as before: the frames are the same either way, and so are the
errors, except that a clip after a damaged stretch, which decoding from the start stops
at, is now read. What a file's first read learnt (the first frame's pts, or that the
file cannot be sought in) is remembered per (path, size, mtime), so later reads of it
do not decode frame 0 or scan its index again. `iter_video_windows` reads a long video
window by window in the same way.
"""

import dataclasses
import functools
import math
import os
import re

import cv2
import numpy as np

from keras_video.data import avi, sampling

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v",
                    ".wmv", ".flv", ".3gp", ".ogv")

REDUCED_JPEG = True  # decode JPEG frames at 1/2, 1/4 or 1/8 scale where the clip allows
JPEG_REDUCTIONS = (8, 4, 2)
_JPEG_FLAGS = {  # (reduction, grayscale) -> imdecode flag
    (1, False): cv2.IMREAD_COLOR, (2, False): cv2.IMREAD_REDUCED_COLOR_2,
    (4, False): cv2.IMREAD_REDUCED_COLOR_4, (8, False): cv2.IMREAD_REDUCED_COLOR_8,
    (1, True): cv2.IMREAD_GRAYSCALE, (2, True): cv2.IMREAD_REDUCED_GRAYSCALE_2,
    (4, True): cv2.IMREAD_REDUCED_GRAYSCALE_4, (8, True): cv2.IMREAD_REDUCED_GRAYSCALE_8,
}
_MJPEG_FOURCCS = avi.MJPEG_FOURCCS
# libjpeg converts to RGB itself (OpenCV >= 4.11): one cvtColor a frame less.
_RGB = getattr(cv2, "IMREAD_COLOR_RGB", None)
# Start-of-frame markers (SOF0-SOF15 without DHT C4, JPG C8 and DAC CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}

SEEK = True  # read clips by seeking to the key frame before them where that is exact
# Codecs and decoded pixel formats that tests/data/test_sparse_decode.py shows PyAV's
# FFmpeg to decode and convert to RGB bit-identically with OpenCV's (two FFmpeg builds
# of different versions): add one here together with a file of it in that test. MJPEG
# is left out on purpose: its own path above decodes only the picked frames already.
SEEK_CODECS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "vp8", "vp9"})
SEEK_PIXEL_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv444p", "gbrp"})
# PyAV decodes with slice threads only (its default), the least CPU per clip, for
# pipelines that decode many clips at once; True adds frame threads as OpenCV uses:
# a lone reader (a timeline over one long video) is faster, each clip costs more CPU.
SEEK_FRAME_THREADS = False
PYAV_MIN_MAJOR = 18  # the PyAV the tests ran with; older ones are left to OpenCV
# A picked frame this many frames or fewer past the decoder's position is decoded to
# rather than sought: the look-up for a key frame in between is not worth it there.
SEEK_MIN_GAP = 8


class BadSampleError(ValueError):
    """An input file that cannot be used; `str()` is 'PATH: problem'."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclasses.dataclass
class DecodeStats:
    """What one read did, for tests and benchmarks that check the work saved.

    method: "seek" (PyAV, from the key frame before each run of picked frames) or
        "opencv" (decoded from the start, the MJPEG paths included).
    decoded: frames the seeking reader's decoder put out (an attempt that fell back to
        OpenCV included; OpenCV's own are not counted).
    seeks: seeks that skipped frames; probes: look-ups of a key frame.
    """

    method: str = ""
    decoded: int = 0
    seeks: int = 0
    probes: int = 0


class _CannotSeek(Exception):
    """The seeking reader cannot promise the frames a decode from the start gives (see
    the module docstring): the caller decodes from the start with OpenCV instead."""


class _NotPlainJpeg(Exception):
    """An MJPEG video whose packets do not decode on their own as JPEG images of the
    declared size (interlaced fields, an odd muxer): FFmpeg decodes it instead."""


def natural_key(name):
    """Sort key that puts 'o (9).jpg' before 'o (10).jpg'."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]


def list_frames(folder):
    """Image files of a frame folder in natural order; raises if there are none."""
    if not os.path.isdir(folder):
        raise BadSampleError(folder, "frame folder does not exist")
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)]
    if not names:
        raise BadSampleError(folder, "frame folder holds no image files "
                             f"({', '.join(IMAGE_EXTENSIONS)})")
    return [os.path.join(folder, n) for n in sorted(names, key=natural_key)]


def jpeg_segments(data):
    """(marker, payload offset, payload length) of the header segments of JPEG bytes
    (bytes or a uint8 array), up to the start of scan; nothing if not a JPEG."""
    buf = memoryview(data).cast("B")
    if len(buf) < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return
    i = 2
    while i + 4 <= len(buf):
        if buf[i] != 0xFF:
            return
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        length = (buf[i + 2] << 8) | buf[i + 3]
        yield marker, i + 4, length - 2
        if marker == 0xDA:  # start of scan: the image data follows
            return
        i += 2 + length


def jpeg_size(data):
    """(height, width) from the header of JPEG bytes, or None if they are not a JPEG."""
    buf = memoryview(data).cast("B")
    for marker, offset, length in jpeg_segments(buf):
        if marker in _SOF_MARKERS and length >= 5:
            return ((buf[offset + 1] << 8) | buf[offset + 2],
                    (buf[offset + 3] << 8) | buf[offset + 4])
    return None


def jpeg_reduction(shape, size):
    """The largest libjpeg scale-down N in (8, 4, 2) that leaves a (height, width) frame
    at least `size` (libjpeg rounds up: ceil(height / N)), else 1."""
    if size is None or shape is None or not REDUCED_JPEG:
        return 1
    for n in JPEG_REDUCTIONS:
        if -(-shape[0] // n) >= size[0] and -(-shape[1] // n) >= size[1]:
            return n
    return 1


def _interpolation(shape, size):
    # INTER_AREA averages when shrinking (no aliasing of 1-px lines); linear when growing.
    shrinking = size[0] < shape[0] or size[1] < shape[1]
    return cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR


def resize_frame(frame, size):
    """A frame at `size` (height, width): INTER_AREA when shrinking, INTER_LINEAR when
    growing, the frame itself when `size` is None or already its size."""
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    h, w = size
    return cv2.resize(frame, (w, h), interpolation=_interpolation(frame.shape, size))


def _finish(frames, size, grayscale, bgr=True):
    """Decoded frames (BGR, RGB with bgr=False, or already gray [H, W]) -> resized RGB
    (or gray) uint8 array [T, H, W, C]."""
    out = []
    for frame in frames:
        frame = resize_frame(frame, size)
        if frame.ndim == 2:  # decoded as gray
            out.append(frame[..., None])
        elif grayscale:
            gray = cv2.COLOR_BGR2GRAY if bgr else cv2.COLOR_RGB2GRAY
            out.append(cv2.cvtColor(frame, gray)[..., None])
        else:
            out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if bgr else frame)
    return np.stack(out)


def count_frames(path):
    """Number of frames of a video or frame folder, as cheaply as it can be known."""
    if os.path.isdir(path):
        return len(list_frames(path))
    cap = _open_video(path)
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if n > 0:
            return n
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def _open_video(path):
    if not os.path.exists(path):
        raise BadSampleError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise BadSampleError(path, "file is empty (0 bytes)")
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        cap.release()
        raise BadSampleError(path, "OpenCV cannot open it as a video (corrupt, truncated "
                             "before its index, or not a video)")
    return cap


def iter_video_frames(path):
    """Every frame of a video, decoded by OpenCV one at a time: RGB uint8 [H, W, 3]
    (for streaming; a file OpenCV cannot open raises BadSampleError naming it)."""
    capture = _open_video(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _opencv_frame_count(container, stream):
    """The frame count OpenCV's FFmpeg backend declares for a PyAV-opened video
    (CAP_PROP_FRAME_COUNT): the container's count, else its duration times the average
    frame rate, rounded. The seeking reader picks clips from the same count, so that the
    OpenCV path it falls back to picks the same frames."""
    if stream.frames > 0:
        return stream.frames
    seconds = (container.duration or 0) / 1_000_000  # AV_TIME_BASE
    if seconds < 0.000025 and stream.duration and stream.time_base:
        seconds = stream.duration * float(stream.time_base)
    fps = float(stream.average_rate or 0)
    if fps < 0.000025 and stream.time_base:
        fps = 1 / float(stream.time_base)
    return int(math.floor(seconds * fps + 0.5))


class _Seeker:
    """A video opened in PyAV to read frames by index, each run of picked frames decoded
    from the key frame at or before it rather than from the start of the video.

    Frame i is the one whose pts lies i frame durations (1 / average rate) after the
    first frame's; each frame the decoder puts out is checked to be the very next one
    due, so a gap, a duplicate or an off-grid timestamp raises _CannotSeek rather than
    giving a frame other than the i-th of a decode from the start. Look-ups of a key
    frame ("probes") seek a second, demux-only container once the decoder holds frames
    worth keeping, so that a look-up that finds no key frame ahead costs no decoding.
    """

    def __init__(self, av, path, stats, key):
        from av.video.reformatter import VideoReformatter

        self.av, self.path, self.stats = av, path, stats
        self._errors = (av.error.FFmpegError, OSError, ValueError, UnicodeError)
        self._prober = None
        # One converter for all frames, on this thread: VideoFrame.to_ndarray makes a
        # new swscale context (and its threads) for every frame, many times the cost of
        # the conversion itself. Bicubic as OpenCV asks swscale for: the filter that
        # upsamples the chroma of odd-sized frames (even sizes take a path without it).
        self._to_rgb = VideoReformatter()
        try:
            self.container = av.open(path, metadata_errors="ignore")
        except self._errors as e:
            raise _CannotSeek(f"PyAV cannot open it: {e}") from None
        try:
            self._start(key)
        except _CannotSeek:
            self.close()
            _remember_first_frame(key, None)
            raise
        except BaseException:
            self.close()
            raise

    def _start(self, key):
        streams = self.container.streams.video
        if len(streams) != 1:
            raise _CannotSeek(f"{len(streams)} video streams")
        stream = self.stream = streams[0]
        if stream.codec_context.name not in SEEK_CODECS:
            raise _CannotSeek(f"codec {stream.codec_context.name} is not in SEEK_CODECS")
        rate, time_base = stream.average_rate, stream.time_base
        if not rate or not time_base or rate <= 0:
            raise _CannotSeek("no average frame rate")
        self.count = _opencv_frame_count(self.container, stream)
        if self.count <= 0:
            raise _CannotSeek("no declared frame count")
        step = 1 / (rate * time_base)  # a frame's duration in time-base units
        self._num, self._den = step.numerator, step.denominator
        if stream.duration and abs(stream.duration - self.count * step) > step / 2:
            raise _CannotSeek("duration is not the declared frames at a constant rate")
        if SEEK_FRAME_THREADS:
            stream.codec_context.thread_type = "AUTO"
        self._expect = 0  # index of the next frame due from the decoder
        self._leading = False  # just sought: frames before the key frame are dropped
        self._fresh = True  # no frame given out yet
        self._frames = self._decode(self.container)
        self._held = None  # frame 0 where it was decoded here, given out by _next
        self._key = key
        self._off_key = False  # a probe found the demuxer on a packet of no key frame
        self._origin = _FIRST_FRAMES.get(key)
        if self._origin is _UNSEEKABLE:
            raise _CannotSeek("found before not to be readable by seeking")
        if self._origin is None:
            first = self._next_decoded()
            turned = any(getattr(data.type, "name", "") == "DISPLAYMATRIX"
                         for data in first.side_data)  # a rotation or a flip
            if first.pts is None or first.format.name not in SEEK_PIXEL_FORMATS \
                    or turned:
                raise _CannotSeek("no pts, a pixel format not in SEEK_PIXEL_FORMATS, "
                                  "or a display matrix (OpenCV turns such frames)")
            self._origin, self._held = first.pts, first
            self._check_index(stream)
            _remember_first_frame(key, first.pts)

    def _check_index(self, stream):
        """Raises _CannotSeek unless the container's index (once per file: all frames
        in MP4 and AVI, the key frames in Matroska) lies on the constant-rate grid: a
        frame missing in one place and one too many in another would leave the duration
        right and shift the frames between off their indices."""
        entries = stream.index_entries
        times = [entry.timestamp for entry in entries]
        if len(times) == self.count:  # every frame, in decoding order: evenly spaced
            first = times[0]
            grid = (self._pts(k) - self._origin for k in range(len(times)))
            if any(abs(t - first - g) > min(1, self._num / (4 * self._den))
                   for t, g in zip(times, grid)):
                raise _CannotSeek("the index is not evenly spaced")
        elif any(self._index(t) is None for t in times):
            raise _CannotSeek("an indexed key frame lies off the constant-rate grid")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for container in (self.container, self._prober):
            if container is not None:
                container.close()

    def _index(self, pts):
        """The frame index of a pts on the constant-rate grid, None where it is more than
        a quarter frame (or one time-base unit) off it."""
        offset = (pts - self._origin) * self._den  # in units of 1 / den
        i = (2 * offset + self._num) // (2 * self._num)
        miss = abs(offset - i * self._num)
        return i if miss <= self._den and 4 * miss <= self._num else None

    def _pts(self, i):
        return self._origin + (2 * i * self._num + self._den) // (2 * self._den)

    @staticmethod
    def _decode(container):
        stream = container.streams.video[0]
        for packet in container.demux(stream):  # the last, empty packet flushes
            yield from packet.decode()

    def _next_decoded(self):
        try:
            frame = next(self._frames)
        except StopIteration:
            raise _CannotSeek(f"the stream ends before frame {self._expect}") from None
        except self._errors as e:
            raise _CannotSeek(f"PyAV: {e}") from None
        self.stats.decoded += 1
        return frame

    def _next(self):
        """(index, frame) of the next frame from the decoder, checked to be the one due."""
        self._fresh = False
        if self._held is not None:
            frame, self._held = self._held, None
            self._expect = 1
            return 0, frame
        while True:
            frame = self._next_decoded()
            i = None if frame.pts is None else self._index(frame.pts)
            if self._leading and i is not None and i < self._expect:
                continue  # an open GOP's frames shown before its key frame
            if i != self._expect:
                # Timestamps that do not count the frames: leave the file to OpenCV.
                _remember_first_frame(self._key, None)
                raise _CannotSeek(f"the decoder gave pts {frame.pts} where frame "
                                  f"{self._expect} was due")
            self._leading = False
            self._expect += 1
            return i, frame

    def _probe(self, container, j):
        """(seek pts, index of the key frame there) for the key frame at or before
        frame j, as `container` seeks to it; None where the demuxer does not tell."""
        self.stats.probes += 1
        stream = container.streams.video[0]
        target = self._pts(j)
        for _ in range(4):
            try:
                container.seek(target, backward=True, any_frame=False, stream=stream)
                packet = next((p for p in container.demux(stream) if p.size), None)
            except self._errors:
                return None
            if packet is not None and not packet.is_keyframe:
                self._off_key = True  # the demuxer lands anywhere (MPEG-TS)
            if packet is None or packet.pts is None or not packet.is_keyframe:
                return None
            key = self._index(packet.pts)
            if key is None:
                return None
            if key <= j:
                return target, key
            # Indexed by decoding time (B-frames): this key frame is shown after frame j;
            # the one before it is indexed before this one's decoding time.
            target = min(target, packet.pts if packet.dts is None else packet.dts) - 1
        return None

    def _skip_towards(self, j):
        """Seeks to the key frame at or before frame j where that skips frames."""
        fresh = self._fresh  # nothing given out yet: the decoder holds little or nothing
        if fresh:
            container = self.container
        else:
            if self._prober is None:
                try:
                    self._prober = self.av.open(self.path, metadata_errors="ignore")
                except self._errors:
                    return
            container = self._prober
        found = self._probe(container, j)
        if found is None:
            if fresh:  # the decoder's container has moved: its position is unknown
                if self._off_key:  # and will next time: leave the file to OpenCV
                    _remember_first_frame(self._key, None)
                raise _CannotSeek(f"the demuxer found no key frame for frame {j}")
            return
        target, key = found
        if not fresh and key <= self._expect:
            return  # no key frame ahead of the decoder: decode on to frame j
        try:
            self.container.seek(target, backward=True, any_frame=False, stream=self.stream)
        except self._errors as e:
            raise _CannotSeek(f"PyAV: {e}") from None
        self.stats.seeks += key > self._expect
        self._frames = self._decode(self.container)
        self._held = None
        self._expect = key
        self._leading = True

    def frames(self, wanted, size=None):
        """(index, RGB uint8 frame resized to `size`) for each of the ascending, distinct
        frame indices `wanted`."""
        for j in wanted:
            j = int(j)
            if not self._expect <= j < self.count:
                raise ValueError(f"frame {j} is not ahead of frame {self._expect - 1} "
                                 f"in a video of {self.count} frames")
            if j - self._expect > SEEK_MIN_GAP:
                self._skip_towards(j)
            i, frame = self._next()
            while i < j:
                i, frame = self._next()
            rgb = self._to_rgb.reformat(frame, format="rgb24", interpolation="BICUBIC",
                                        threads=1).to_ndarray()
            yield j, resize_frame(rgb, size)


# What the first frame of a video file told the seeking reader: its pts (the origin of
# the frame-index grid), or None where the file cannot be read by seeking (see
# _Seeker._start); keyed by (path, size, mtime), so that the next reads of the file (the
# next epoch) need not decode that frame, or try PyAV, again.
_FIRST_FRAMES = {}
_FIRST_FRAMES_MAX = 100_000
_UNSEEKABLE = object()


def _remember_first_frame(key, pts):
    if len(_FIRST_FRAMES) >= _FIRST_FRAMES_MAX:
        _FIRST_FRAMES.clear()
    _FIRST_FRAMES[key] = _UNSEEKABLE if pts is None else pts


def _open_seeker(path, stats):
    """A _Seeker on the video, or None where SEEK is off, PyAV is not installed or the
    video is not one the seeking reader can read exactly."""
    if not SEEK:
        return None
    try:
        import av
    except ImportError:
        return None
    if int(av.__version__.split(".")[0]) < PYAV_MIN_MAJOR:
        return None
    path = str(path)
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_size, st.st_mtime_ns)
    if _FIRST_FRAMES.get(key) is _UNSEEKABLE:
        return None
    try:
        return _Seeker(av, path, stats, key)
    except _CannotSeek:
        return None


def _seek_clip(path, pick, size, grayscale, stats):
    """The finished clip pick(frame count) read by seeking, or None where the seeking
    reader cannot promise the frames of a decode from the start."""
    seeker = _open_seeker(path, stats)
    if seeker is None:
        return None
    with seeker:
        idx = [int(i) for i in pick(seeker.count)]
        try:
            got = dict(seeker.frames(sorted(set(idx)), size))
        except _CannotSeek:
            return None
    stats.method = "seek"
    return _finish([got[i] for i in idx], size, grayscale, bgr=False)


def _opencv_frames_at(path, wanted, size, declared):
    """(index, RGB frame resized to `size`) for the ascending, distinct indices
    `wanted`, decoded from the start by OpenCV."""
    cap = _open_video(path)
    try:
        wanted = iter(wanted)
        j, i = next(wanted, None), 0
        while j is not None:
            _grab(cap, path, i, declared)
            if i == j:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    raise BadSampleError(path, f"frame {i} could not be decoded")
                yield i, cv2.cvtColor(resize_frame(frame, size), cv2.COLOR_BGR2RGB)
                j = next(wanted, None)
            i += 1
    finally:
        cap.release()


def _frames_at(path, seeker, wanted, size, declared, stats):
    """(index, RGB frame resized to `size`) for the ascending, distinct indices `wanted`:
    by seeking, and from the first frame the seeking reader cannot promise on (or from
    the start, with no seeker) decoded from the start by OpenCV."""
    done = -1
    if seeker is not None:
        with seeker:
            stats.method = "seek"
            try:
                for i, frame in seeker.frames(wanted, size):
                    done = i
                    yield i, frame
                return
            except _CannotSeek:
                pass
    stats.method = "opencv"
    yield from _opencv_frames_at(path, [i for i in wanted if i > done], size, declared)


def iter_video_windows(path, window, stride, step=1, size=None, grayscale=False,
                       stats=None):
    """Every `window`-frame clip of a video file whose first frames are `stride` apart
    (its frames `step` apart), in order: (index of its first frame, clip uint8
    [window, H, W, C], RGB or gray, resized to `size`).

    For a timeline over a long video: each window is read by seeking to the key frame
    before it, so windows far apart cost their own frames, not the whole video, and
    overlapping or adjacent windows share one pass of the decoder. The frames are those
    a decode from the start gives (the OpenCV path where seeking cannot promise that).
    Windows lie wholly inside the video; a video shorter than one window gives one
    window of its frames looped, as `sampling.frame_indices` does.
    """
    path = str(path)
    if min(window, stride, step) < 1:
        raise ValueError("window, stride and step must be at least 1")
    stats = stats if stats is not None else DecodeStats()
    seeker = _open_seeker(path, stats)
    total = seeker.count if seeker is not None else count_frames(path)
    if total <= 0:
        raise BadSampleError(path, "video has zero decodable frames")
    span = (window - 1) * step + 1
    offsets = np.arange(window, dtype=np.int64) * step
    if total < span:
        windows = [(0, offsets % total)]
    else:
        windows = [(s, s + offsets) for s in range(0, total - span + 1, stride)]
    wanted = np.unique(np.concatenate([idx for _, idx in windows])).tolist()
    frames = _frames_at(path, seeker, wanted, size, total, stats)
    held = {}  # decoded frames a window still needs
    try:
        for n, (start, idx) in enumerate(windows):
            last = int(idx.max())
            while last not in held:
                i, frame = next(frames)
                held[i] = frame
            yield start, _finish([held[int(i)] for i in idx], size, grayscale, bgr=False)
            keep = int(windows[n + 1][1].min()) if n + 1 < len(windows) else last + 1
            for i in [i for i in held if i < keep]:
                del held[i]
    finally:
        frames.close()


def _jpeg_decoder(shape, size, grayscale, rgb=False):
    """(decode(packet) -> frame, its (height, width), whether it is RGB) for the JPEG
    packets of a video of `shape`, at the reduced scale `size` allows: BGR, RGB where
    rgb=True and OpenCV can, or gray [H, W]. A packet that does not decode to that
    size raises _NotPlainJpeg."""
    n = jpeg_reduction(shape, size)
    flag = _JPEG_FLAGS[n, grayscale]
    rgb = rgb and not grayscale and _RGB is not None
    if rgb:
        flag = (flag & ~cv2.IMREAD_COLOR) | _RGB
    expected = (-(-shape[0] // n), -(-shape[1] // n))

    def decode(packet):
        frame = None
        if packet is not None and packet.size:
            frame = cv2.imdecode(packet, flag)
        if frame is None or frame.shape[:2] != expected:
            raise _NotPlainJpeg
        return frame

    return decode, expected, rgb


def _jpeg_packets(cap, size, grayscale):
    """For an MJPEG video: switches `cap` to raw packets and returns
    decode(packet) -> BGR (or gray) frame at reduced scale; None for other codecs."""
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").upper()
    if fourcc not in _MJPEG_FOURCCS or not cap.set(cv2.CAP_PROP_FORMAT, -1):
        return None
    shape = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
    return _jpeg_decoder(shape, size, grayscale)[0]


def _grab(cap, path, index, declared):
    """Advances OpenCV's capture to frame `index`; a video that stops first is a
    BadSampleError naming the file and where it stopped."""
    if not cap.grab():
        if index == 0:
            raise BadSampleError(path, "video has zero decodable frames")
        raise BadSampleError(path, f"truncated or corrupt: decoding stopped at frame "
                                   f"{index} of the {declared} the container declares")


def _video_frames(path, pick, size, grayscale, packets):
    """The frames pick(frame count) of a video, each resized to `size`, BGR or gray;
    pick=None: every frame that decodes.

    packets: read an MJPEG video as JPEG packets (only the picked ones decoded, at
    reduced scale); raises _NotPlainJpeg where that fails.
    """
    cap = _open_video(path)
    try:
        jpeg = _jpeg_packets(cap, size, grayscale) if packets else None

        def retrieve(i):
            ok, item = cap.retrieve()
            if jpeg is not None:  # item is the packet; decoded when picked
                return item
            if not ok or item is None:
                raise BadSampleError(path, f"frame {i} could not be decoded")
            return resize_frame(item, size)  # resized as it is read: less to hold

        def decoded(item):
            return item if jpeg is None else resize_frame(jpeg(item), size)

        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if declared <= 0 or pick is None:
            # Some containers do not declare a count: read everything, then pick.
            items = []
            while cap.grab():
                items.append(retrieve(len(items)))
            if not items:
                raise BadSampleError(path, "video has zero decodable frames")
            idx = range(len(items)) if pick is None else pick(len(items))
            return [decoded(items[int(i)]) for i in idx]
        idx = pick(declared)
        wanted = set(int(i) for i in idx)
        frames = {}
        for i in range(int(idx.max()) + 1):
            _grab(cap, path, i, declared)
            if i in wanted:
                frames[i] = decoded(retrieve(i))
        return [frames[int(i)] for i in idx]
    finally:
        cap.release()


def jpeg_packets(path):
    """Every frame of an MJPEG video as the JPEG bytes it is stored as (each checked to
    decode at the video's size), or None for other codecs and for packets that are not
    plain JPEG images."""
    cap = _open_video(path)
    try:
        jpeg = _jpeg_packets(cap, None, False)
        packets = []
        while jpeg is not None and cap.grab():
            packet = cap.retrieve()[1]
            jpeg(packet)
            packets.append(packet.tobytes())
        return packets or None
    except _NotPlainJpeg:
        return None
    finally:
        cap.release()


def _read_video_frames(path, pick, size, grayscale):
    """_video_frames through JPEG packets where the video is MJPEG, else through FFmpeg
    (also when the packets turn out not to be plain JPEG: FFmpeg then has the say on
    a damaged file, as for any codec)."""
    try:
        return _video_frames(path, pick, size, grayscale, packets=True)
    except (_NotPlainJpeg, BadSampleError):
        return _video_frames(path, pick, size, grayscale, packets=False)


def _avi_clip(path, pick, size, grayscale):
    """The frames pick(frame count) of a plain MJPEG .avi (keras_video.data.avi finds
    its JPEG packets without FFmpeg), decoded at reduced scale straight to RGB (or
    gray) and resized into the clip; pick=None: every frame. None for any other file,
    which FFmpeg demuxes (`_read_video_frames`). Bit-identical to that path."""
    found = avi.mjpeg_packets(path)
    if found is None:
        return None
    shape, packets = found
    decode, decoded_shape, rgb = _jpeg_decoder(shape, size, grayscale, rgb=True)
    out_shape = tuple(size) if size is not None else decoded_shape
    idx = range(len(packets)) if pick is None else [int(i) for i in pick(len(packets))]
    clip = np.empty((len(idx), *out_shape, 1 if grayscale else 3), np.uint8)
    first = {}  # frame index -> its row in the clip (looped clips repeat frames)
    for row, i in enumerate(idx):
        if i in first:
            clip[row] = clip[first[i]]
            continue
        first[i] = row
        frame = decode(packets[i])
        if not grayscale and not rgb:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        target = clip[row, ..., 0] if grayscale else clip[row]
        if out_shape == decoded_shape:
            target[...] = frame
        elif cv2.resize(frame, out_shape[::-1], dst=target,
                        interpolation=_interpolation(decoded_shape, out_shape)) is not target:
            raise AssertionError("cv2.resize did not write into the clip")
    return clip


def _read_avi_or_video(path, pick, size, grayscale, stats=None):
    """The finished clip: through `_avi_clip` where it applies, else by seeking (picked
    frames only), else FFmpeg from the start."""
    stats = stats if stats is not None else DecodeStats()
    try:
        clip = _avi_clip(path, pick, size, grayscale)
    except _NotPlainJpeg:
        clip = None
    if clip is not None:
        stats.method = "opencv"
        return clip
    if pick is not None:
        clip = _seek_clip(path, pick, size, grayscale, stats)
        if clip is not None:
            return clip
    stats.method = "opencv"
    return _finish(_read_video_frames(path, pick, size, grayscale), size, grayscale)


def read_video(path, num_frames, mode="uniform", stride=1, rng=None, size=None,
               grayscale=False, stats=None):
    """Decodes the frames `sampling.frame_indices` picks from a video file; `stats`, a
    DecodeStats, is filled in with how."""
    # Memoised so that a second attempt (FFmpeg after JPEG packets or seeking) draws no
    # new crop.
    pick = functools.lru_cache(maxsize=None)(
        lambda total: sampling.frame_indices(total, num_frames, mode, stride, rng))
    return _read_avi_or_video(path, pick, size, grayscale, stats)


def read_frames(path, indices, size=None, grayscale=False, stats=None):
    """The frames at `indices` (any order, repeats allowed) of a video file, RGB (or
    gray) uint8 [len(indices), H, W, C] resized to `size`: by seeking where that gives
    the frames of a decode from the start, else decoded from the start."""
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)

    def pick(total):
        if indices.size == 0 or indices.min() < 0 or indices.max() >= total:
            raise ValueError(f"frame indices must lie in [0, {total}) for {path}")
        return indices

    return _read_avi_or_video(path, pick, size, grayscale, stats)


def read_image(path, size=None, grayscale=False):
    """One image file, BGR, or gray [H, W] where a JPEG was decoded as gray; a JPEG at
    the reduced scale `jpeg_reduction` allows."""
    data = np.fromfile(path, np.uint8)
    shape = jpeg_size(data) if data.size else None
    n = jpeg_reduction(shape, size)
    image = cv2.imdecode(data, _JPEG_FLAGS[n, grayscale and shape is not None]) \
        if data.size else None
    if n > 1 and image is not None and (image.shape[0] < size[0] or image.shape[1] < size[1]):
        # EXIF orientation turned the frame: smaller than the clip at this scale.
        image = cv2.imdecode(data, _JPEG_FLAGS[1, grayscale])
    if image is None:
        raise BadSampleError(path, "unreadable image (corrupt or not an image)")
    return image


def read_frame_folder(path, num_frames, mode="uniform", stride=1, rng=None, size=None,
                      grayscale=False):
    """Reads the sampled images of a folder of numbered frames."""
    files = list_frames(path)
    idx = sampling.frame_indices(len(files), num_frames, mode, stride, rng)
    frames, cache = [], {}
    for i in idx:
        i = int(i)
        if i not in cache:
            cache[i] = read_image(files[i], size, grayscale)
        frames.append(cache[i])
    shapes = {f.shape for f in frames}
    if len(shapes) > 1 and size is None:
        raise BadSampleError(path, f"frames differ in size {sorted(shapes)}; give a size")
    return _finish(frames, size, grayscale)


def read_clip(path, num_frames, mode="uniform", stride=1, rng=None, size=None,
              grayscale=False):
    """A clip [num_frames, H, W, C] uint8 from a video file or a frame folder."""
    reader = read_frame_folder if os.path.isdir(path) else read_video
    return reader(path, num_frames, mode, stride, rng, size, grayscale)


def read_all_frames(path, size=None, grayscale=False):
    """Every frame of a video file or frame folder, RGB (or gray) uint8 [T, H, W, C],
    resized to `size` (height, width) when given."""
    if os.path.isdir(path):
        n = len(list_frames(path))
        return read_frame_folder(path, n, "first", size=size, grayscale=grayscale)
    return _read_avi_or_video(path, None, size, grayscale)


def clip_from_array(frames, num_frames, mode="uniform", stride=1, rng=None, size=None,
                    grayscale=False, name="<array>"):
    """The same sampling and resizing for frames already decoded (RGB [T, H, W, 3])."""
    if len(frames) == 0:
        raise BadSampleError(name, "video has zero frames")
    idx = sampling.frame_indices(len(frames), num_frames, mode, stride, rng)
    return _finish([np.ascontiguousarray(frames[i]) for i in idx], size, grayscale,
                   bgr=False)
