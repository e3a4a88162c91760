"""Reading clips from disk with OpenCV: video files and folders of numbered images.

Every problem with an input file raises `BadSampleError`, whose message names the file
and says what is wrong; nothing here returns silently wrong data. Frames come out RGB
(OpenCV decodes BGR; the ResNet+LSTM seed fed BGR to an RGB network, we never do).
"""

import os
import re

import cv2
import numpy as np

from keras_video.data import sampling

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v",
                    ".wmv", ".flv", ".3gp", ".ogv")


class BadSampleError(ValueError):
    """An input file that cannot be used; `str()` is 'PATH: problem'."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


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


def _resize(frame, size):
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    h, w = size
    # INTER_AREA averages when shrinking (no aliasing of 1-px lines); linear when growing.
    shrinking = h < frame.shape[0] or w < frame.shape[1]
    return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA if shrinking
                      else cv2.INTER_LINEAR)


def _finish(frames, size, grayscale, bgr=True):
    """Decoded frames -> resized RGB (or gray) uint8 array [T, H, W, C]."""
    out = []
    for frame in frames:
        frame = _resize(frame, size)
        if grayscale:
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


def read_video(path, num_frames, mode="uniform", stride=1, rng=None, size=None,
               grayscale=False):
    """Decodes the frames `sampling.frame_indices` picks from a video file."""
    cap = _open_video(path)
    try:
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if declared <= 0:
            # Some containers do not declare a count: decode everything, then sample.
            frames = []
            while True:
                ok, frame = cap.read()
                if not ok:
                    break
                frames.append(frame)
            if not frames:
                raise BadSampleError(path, "video has zero decodable frames")
            idx = sampling.frame_indices(len(frames), num_frames, mode, stride, rng)
            return _finish([frames[i] for i in idx], size, grayscale)
        idx = sampling.frame_indices(declared, num_frames, mode, stride, rng)
        wanted = set(int(i) for i in idx)
        decoded = {}
        for i in range(int(idx.max()) + 1):
            if not cap.grab():
                if i == 0:
                    raise BadSampleError(path, "video has zero decodable frames")
                raise BadSampleError(
                    path, f"truncated or corrupt: decoding stopped at frame {i} of the "
                    f"{declared} the container declares")
            if i in wanted:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    raise BadSampleError(path, f"frame {i} could not be decoded")
                decoded[i] = frame
        return _finish([decoded[int(i)] for i in idx], size, grayscale)
    finally:
        cap.release()


def read_frame_folder(path, num_frames, mode="uniform", stride=1, rng=None, size=None,
                      grayscale=False):
    """Reads the sampled images of a folder of numbered frames."""
    files = list_frames(path)
    idx = sampling.frame_indices(len(files), num_frames, mode, stride, rng)
    frames, cache = [], {}
    for i in idx:
        i = int(i)
        if i not in cache:
            image = cv2.imread(files[i], cv2.IMREAD_COLOR)
            if image is None:
                raise BadSampleError(files[i], "unreadable image (corrupt or not an image)")
            cache[i] = image
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
    cap = _open_video(path)
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            # Resized as it is read: a whole video at full size need not be held.
            frames.append(_resize(frame, size))
    finally:
        cap.release()
    if not frames:
        raise BadSampleError(path, "video has zero decodable frames")
    return _finish(frames, None, grayscale)


def clip_from_array(frames, num_frames, mode="uniform", stride=1, rng=None, size=None,
                    grayscale=False, name="<array>"):
    """The same sampling and resizing for frames already decoded (RGB [T, H, W, 3])."""
    if len(frames) == 0:
        raise BadSampleError(name, "video has zero frames")
    idx = sampling.frame_indices(len(frames), num_frames, mode, stride, rng)
    return _finish([np.ascontiguousarray(frames[i]) for i in idx], size, grayscale,
                   bgr=False)
