"""The timeline of a long video: a clip model's scores window by window, and the
segments where its smoothed top label holds.

    scorer, meta = live.load_scorer("runs/ucf101")
    result = timeline.build("match.mp4", scorer, live.eval_clip(meta), meta["task"],
                            meta["class_names"], stride=8, smooth=5)
    result.segments   # [Segment(start s, end s, label, score)]
    timeline.write(result, "match.json")   # or .csv; timeline.plot(result) the picture

Windows are those of live recognition (keras_video.serving.live): the frames one clip
reads, consecutive at the clip's stride, one window every `stride` frames. They are
read by decode.iter_video_windows, which seeks to the key frame before each window, so
a long video costs the frames its windows hold, and resized to the clip's decode size
as `predict` reads clips; the scorer takes them in batches.

Window i stands for the moment at its centre, and its scores for the stretch of the
video between the midpoints to its neighbours' centres (the first from 0 s, the last
to the end of the video): the windows partition the video, and a segment is a run of
windows with the same top label, from its first window's stretch to its last one's,
with the mean smoothed score of that label over its windows. Smoothing is offline
here, so it is centred: window i takes the mean of the `smooth` windows around it
(fewer at the ends), which does not shift segment boundaries as live recognition's
mean of the last windows does. A regression model has values, no segments.
"""

import csv
import dataclasses
import io
import json
import os

import numpy as np

from keras_video import plots
from keras_video.data import decode
from keras_video.serving import live

FORMATS = ("json", "csv")


@dataclasses.dataclass
class Segment:
    """A stretch of the video (seconds) whose smoothed top label holds throughout;
    score: that label's mean smoothed score over the segment's windows; index: the
    label's class index."""

    start: float
    end: float
    label: str
    score: float
    index: int

    def to_dict(self):
        return {"start": round(self.start, 4), "end": round(self.end, 4),
                "label": self.label, "score": round(self.score, 6)}


@dataclasses.dataclass
class Timeline:
    """A video's windows and segments. starts: each window's first frame; times: its
    centre (s); scores [N, K] the model's, smoothed [N, K] their centred means
    (regression: K = 1); fps and frames: the video's; duration = frames / fps."""

    path: str
    fps: float
    frames: int
    span: int
    stride: int
    smooth: int
    task: str
    class_names: list
    starts: np.ndarray
    times: np.ndarray
    scores: np.ndarray
    smoothed: np.ndarray
    segments: list

    @property
    def duration(self):
        return self.frames / self.fps

    def to_dict(self):
        """The JSON document: the video, the windows (time, frames, top label and score,
        or value) and the segments."""
        windows = []
        for start, t, scores in zip(self.starts, self.times, self.smoothed):
            window = {"time": round(float(t), 4),
                      "frames": [int(start), int(min(start + self.span, self.frames)) - 1]}
            if self.task == "regression":
                window["value"] = float(scores[0])
            else:
                best = int(np.argmax(scores))
                window.update(label=self.class_names[best], score=float(scores[best]))
            windows.append(window)
        return {"path": self.path, "fps": self.fps, "frames": self.frames,
                "duration": round(self.duration, 4), "task": self.task,
                "window_frames": self.span, "stride": self.stride, "smooth": self.smooth,
                "segments": [s.to_dict() for s in self.segments], "windows": windows}


def video_fps(path):
    """The frame rate a video declares (cv2.CAP_PROP_FPS), live.DEFAULT_FPS when it
    declares none."""
    import cv2

    capture = decode._open_video(str(path))
    try:
        return float(capture.get(cv2.CAP_PROP_FPS)) or live.DEFAULT_FPS
    finally:
        capture.release()


def score_windows(path, scorer, clip, stride, batch_size=8):
    """(first frames int64 [N], scores float32 [N, K]) of every window of a video (see
    the module docstring), the scorer called on batches of `batch_size` windows."""
    starts, scores, batch = [], [], []

    def flush():
        if batch:
            scores.append(np.asarray(scorer(np.stack(batch)), np.float32))
            batch.clear()

    for start, frames in decode.iter_video_windows(
            path, clip.frames_to_read, stride, clip.stride, clip.decode_size,
            live.reads_gray(clip)):
        starts.append(start)
        batch.append(clip.from_frames(frames))
        if len(batch) == batch_size:
            flush()
    flush()
    if not starts:
        raise decode.BadSampleError(path, "no window could be read")
    return np.asarray(starts, np.int64), np.concatenate(scores)


def smooth_scores(scores, k):
    """Each row the mean of the `k` rows centred on it (k // 2 before, the rest after;
    fewer at the ends)."""
    scores = np.asarray(scores, np.float32)
    if k <= 1:
        return scores.copy()
    before = k // 2
    after = k - 1 - before
    sums = np.concatenate([np.zeros_like(scores[:1]), np.cumsum(scores, axis=0, dtype=np.float64)])
    n = len(scores)
    lo = np.maximum(np.arange(n) - before, 0)
    hi = np.minimum(np.arange(n) + after + 1, n)
    return ((sums[hi] - sums[lo]) / (hi - lo)[:, None]).astype(np.float32)


def window_times(starts, span, frames, fps):
    """The centre (s) of each window: the middle of the frames it covers in the video."""
    starts = np.asarray(starts, np.float64)
    ends = np.minimum(starts + span, frames)
    return (starts + ends) / 2 / fps


def find_segments(times, smoothed, duration, class_names):
    """Segments of a classification timeline: runs of windows with the same arg-max of
    `smoothed`, each from the midpoint before its first window's centre to the midpoint
    after its last one's (0 and `duration` at the ends)."""
    labels = np.argmax(smoothed, axis=1)
    times = np.asarray(times, np.float64)
    segments = []
    first = 0
    for i in range(1, len(labels) + 1):
        if i < len(labels) and labels[i] == labels[first]:
            continue
        c = int(labels[first])
        start = 0.0 if first == 0 else (times[first - 1] + times[first]) / 2
        end = duration if i == len(labels) else (times[i - 1] + times[i]) / 2
        segments.append(Segment(float(start), float(max(end, start)), class_names[c],
                                float(np.mean(smoothed[first:i, c])), c))
        first = i
    return segments


def build(path, scorer, clip, task, class_names=None, stride=None, smooth=1,
          batch_size=8):
    """The Timeline of a video file under a clip model (a live.Scorer or any function
    of uint8 clips [B, T, h, w, C] at the clip's decode size -> scores [B, K])."""
    if task not in live.CLIP_TASKS:
        raise ValueError(f"task must be one of {', '.join(live.CLIP_TASKS)}, not {task!r}")
    if task == "classification" and not class_names:
        raise ValueError("a classification timeline needs the class names")
    stride = live.default_stride(clip) if stride is None else int(stride)
    if stride < 1 or smooth < 1:
        raise ValueError(f"--stride and --smooth must be at least 1, not {stride} and "
                         f"{smooth}")
    path = str(path)
    fps = video_fps(path)
    frames = decode.count_frames(path)
    span = live.span_of(clip)
    starts, scores = score_windows(path, scorer, clip, stride, batch_size)
    smoothed = smooth_scores(scores, smooth)
    times = window_times(starts, span, frames, fps)
    segments = ([] if task == "regression"
                else find_segments(times, smoothed, frames / fps, class_names))
    return Timeline(path, fps, frames, span, stride, smooth, task,
                    list(class_names or []), starts, times, scores, smoothed, segments)


def to_csv(timeline):
    """Classification: one row per segment (start, end, label, score); regression:
    one row per window (time, value)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if timeline.task == "regression":
        writer.writerow(["time", "value"])
        for t, value in zip(timeline.times, timeline.smoothed[:, 0]):
            writer.writerow([f"{t:.4f}", f"{value:.6g}"])
    else:
        writer.writerow(["start", "end", "label", "score"])
        for segment in timeline.segments:
            writer.writerow([f"{segment.start:.4f}", f"{segment.end:.4f}", segment.label,
                             f"{segment.score:.6f}"])
    return out.getvalue()


def render(timeline, fmt="json"):
    """The timeline as text: the JSON document (Timeline.to_dict) or the CSV."""
    if fmt not in FORMATS:
        raise ValueError(f"timeline format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "csv":
        return to_csv(timeline)
    return json.dumps(timeline.to_dict(), indent=2) + "\n"


def plot(timeline):
    """The class scores over time (smoothed), the segments shaded in their class's
    colour (plots.scores_over_time): an RGB picture. None for regression."""
    if timeline.task == "regression":
        return None
    title = (f"{os.path.basename(timeline.path)}: class scores over time"
             + (f" (mean of {timeline.smooth} windows)" if timeline.smooth > 1 else ""))
    return plots.scores_over_time(timeline.times, timeline.smoothed, timeline.class_names,
                                  title=title,
                                  segments=[(s.start, s.end, s.index) for s in timeline.segments])


def plot_path(output):
    """Where the picture of a timeline written to `output` goes: beside it, .png."""
    return os.path.splitext(output)[0] + ".png"


def write(timeline, output, fmt=None):
    """Writes the timeline to `output` (fmt: json or csv, default from its ending) and,
    for a classification model, its picture beside it (plot_path); returns the
    picture's path or None."""
    if fmt is None:
        fmt = "csv" if output.lower().endswith(".csv") else "json"
    text = render(timeline, fmt)
    live.check_output_folder(output)
    with open(output, "w") as f:
        f.write(text)
    image = plot(timeline)
    if image is None:
        return None
    return plots.save_png(image, plot_path(output))
