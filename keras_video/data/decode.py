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
turns this off. Other codecs (H.264, VP9, Xvid, ...) are decoded by FFmpeg in full, as
before.
"""

import functools
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


class BadSampleError(ValueError):
    """An input file that cannot be used; `str()` is 'PATH: problem'."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


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
            if not cap.grab():
                if i == 0:
                    raise BadSampleError(path, "video has zero decodable frames")
                raise BadSampleError(
                    path, f"truncated or corrupt: decoding stopped at frame {i} of the "
                    f"{declared} the container declares")
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


def _read_avi_or_video(path, pick, size, grayscale):
    """The finished clip: through `_avi_clip` where it applies, else FFmpeg."""
    try:
        clip = _avi_clip(path, pick, size, grayscale)
    except _NotPlainJpeg:
        clip = None
    if clip is not None:
        return clip
    return _finish(_read_video_frames(path, pick, size, grayscale), size, grayscale)


def read_video(path, num_frames, mode="uniform", stride=1, rng=None, size=None,
               grayscale=False):
    """Decodes the frames `sampling.frame_indices` picks from a video file."""
    # Memoised so that a second attempt (FFmpeg after JPEG packets) draws no new crop.
    pick = functools.lru_cache(maxsize=None)(
        lambda total: sampling.frame_indices(total, num_frames, mode, stride, rng))
    return _read_avi_or_video(path, pick, size, grayscale)


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
