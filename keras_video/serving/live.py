"""Live recognition: a clip model (cnn_lstm, c3d, r3d*, r2plus1d*, frame_cnn) scoring a
camera, a stream or a video file read as if it were live, window by window.

    scorer, meta = live.load_scorer("runs/ucf101")     # its SavedModel, or a .tflite file
    recognizer = live.LiveRecognizer.from_meta(scorer, meta, stride=4, smooth=5)
    run = recognizer.run("0")                           # camera 0, "rtsp://...", a file
    for result in run:
        print(recognizer.line(result, top_k=5))
    print(run.summary())

Two threads share the work:

  capture  (a daemon thread) opens the source and reads it; the blocking read happens
           here and nowhere else. Each frame is resized to the clip's decode size, as
           `predict` decodes clips (decode.resize_frame), and converted to RGB (gray for
           a flow model), then kept in a ring buffer of the last `span` frames, the
           frames one clip reads: span = (frames a clip reads - 1) x the clip's stride
           + 1. Every `stride` frames a window is due, the one ending at that frame;
           its frames are copied into a one-window mailbox. A window that falls due
           while the mailbox still holds the previous one (the scorer is busy) replaces
           it: the older window is skipped.
  scorer   (the caller's thread) waits on the mailbox with a timeout, scores the
           window through the exported model, smooths the scores (the mean of the last
           `smooth` windows' softmax scores, or regression values) and yields the
           result.

So a slow model never falls behind the stream: it always scores the newest due
window, and the latency of a result is at most one scoring behind its last frame.
What it misses is counted: `dropped` is the frames that lay in a due window but in no
scored one (frames between windows that a stride longer than the span leaves out were
never due, and are not counted), `skipped` the due windows replaced unscored. A scorer
that keeps up, or that is late by less than `stride` frames, scores every due window,
on exactly the frames of the source.

Sources: an integer is a camera index; a string with "://" a stream URL (RTSP, HTTP,
what OpenCV's FFmpeg opens), opened with the read timeout as FFmpeg's open and read
timeouts; anything else a video file, read as if live: frame i is delivered at i / fps
seconds (the file's frame rate) of wall-clock time after the first, so the model meets
it as it would meet a camera. A result's `time` is stream time: i / fps for a file,
seconds since the first frame for a camera or stream.

Nothing hangs: the consumer waits for frames with a timeout, and a source that gives
no frame for `read_timeout` seconds (the first included: a camera that never starts,
an open that never returns) ends the run with BadSampleError "SOURCE: no frame for N s"
(the capture thread, stuck in its read, is a daemon and is left behind). A camera that
cannot be opened is "SOURCE: cannot open camera N"; a missing file is named as decode
names it.

The CNN-LSTM is scored window by window like the 3D CNNs, its whole window through
the exported model each time; or, from its Keras model (best.keras), by
`CnnLstmStreamer`: one CNN pass and one LSTM step a frame, the LSTM state carried, one
state per open window (each starts at zero on its first frame, so a window's score is
what the model was trained to give on it, not on the whole stream so far). The same
scores as the window's, to float rounding.
"""

import collections
import dataclasses
import os
import sys
import threading
import time

import cv2
import numpy as np

from keras_video import run_dir
from keras_video.data import decode
from keras_video.data.pipeline import ClipSpec
from keras_video.serving import export

CLIP_TASKS = ("classification", "regression")
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_FPS = 30.0  # a camera or stream that does not say its frame rate (output video)
_DISPLAY_POLL = 0.03  # seconds between refreshes of the --display window
WINDOW_NAME = "keras_video live"


# --- the exported model -----------------------------------------------------------


def is_tflite(model_path):
    """Whether `model_path` names a TensorFlow Lite file rather than a run or export
    folder."""
    return str(model_path).lower().endswith(".tflite")


def export_meta(model_path):
    """meta.json of a run directory, its export folder, or the export folder a .tflite
    file lies in (keras_video.commands.export writes D/export/model.tflite beside it)."""
    if is_tflite(model_path):
        if not os.path.isfile(model_path):
            raise FileNotFoundError(f"{model_path}: no such TensorFlow Lite file")
        return export.load_meta(os.path.dirname(os.path.abspath(model_path)))
    return export.load_meta(run_dir.export_dir_of(model_path))


class Scorer:
    """A clip model's exported `serve`: clips uint8 [B, T, h, w, C] at the clip's decode
    size (RGB; a flow model's quantized flow) -> float32 scores [B, K] (softmax
    probabilities, or [B, 1] for regression). The one interface every path here
    (files, live, timeline) calls, whatever runs behind it."""

    def __init__(self, function, name):
        self.function = function
        self.name = name

    def __call__(self, clips):
        return np.asarray(self.function(np.ascontiguousarray(clips, np.uint8)), np.float32)


def load_scorer(model_path):
    """(Scorer, meta) of a run directory or export folder (its SavedModel's `serve`
    signature), or of a .tflite file (serving.tflite.TFLiteModel) with the meta.json of
    the folder it lies in. Segmentation and detection exports are refused: they run
    frame by frame (keras_video.serving.streaming)."""
    meta = export_meta(model_path)
    if meta.get("task") not in CLIP_TASKS:
        raise ValueError(f"{model_path}: a {meta.get('task')} model; live recognition "
                         "and timelines run clip models (classification, regression)")
    if is_tflite(model_path):
        from keras_video.serving import tflite

        model = tflite.TFLiteModel(model_path)
        return Scorer(lambda clips: model(frames=clips)["predictions"], model_path), meta
    import tensorflow as tf

    export_dir = run_dir.export_dir_of(model_path)
    serve = tf.saved_model.load(export_dir).signatures["serve"]
    return Scorer(lambda clips: serve(frames=tf.constant(clips))["predictions"].numpy(),
                  export_dir), meta


def eval_clip(meta):
    """The evaluation ClipSpec of an export's meta.json."""
    return ClipSpec(**meta["clip"]).for_eval()


def span_of(clip):
    """Frames of the source one window covers: the frames a clip reads, `clip.stride`
    apart (live and timeline windows take consecutive frames at the clip's stride,
    whatever its training sampling; a "uniform" clip is read at stride 1)."""
    return (clip.frames_to_read - 1) * clip.stride + 1


def default_stride(clip):
    """Windows every half span (half-overlapping), at least every frame."""
    return max(1, span_of(clip) // 2)


def reads_gray(clip):
    """Whether a window holds gray frames: a flow model's (its flow is computed from
    gray frames). A gray RGB-modality model takes RGB frames, as its `serve` does,
    which converts them itself."""
    return clip.modality == "flow"


def prepare_frame(frame_bgr, clip):
    """An OpenCV frame (BGR) -> what a window holds: at the clip's decode size
    (INTER_AREA when shrinking, as decode reads clips), RGB, or gray [h, w, 1] for a
    flow model (reads_gray)."""
    frame = decode.resize_frame(frame_bgr, clip.decode_size)
    if reads_gray(clip):
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)[..., None]
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


def top_classes(scores, class_names, top_k):
    """[{"class", "score"}] of the `top_k` best scores, best first."""
    best = np.argsort(-np.asarray(scores), kind="stable")[:top_k]
    return [{"class": class_names[i], "score": float(scores[i])} for i in best]


# --- sources -------------------------------------------------------------------------


def parse_source(source):
    """("camera", index), ("stream", url) or ("file", path) of a --source value."""
    source = str(source)
    if source.strip().isdigit():
        return "camera", int(source)
    if "://" in source:
        return "stream", source
    return "file", source


class FileAsLive:
    """A video file read as a live source: `read()` delivers frame i at i / fps seconds
    of wall-clock time after the first (the file's frame rate); a frame decoded late is
    delivered at once. Its stream time is i / fps."""

    def __init__(self, path, fps=None):
        self.capture = decode._open_video(path)  # BadSampleError naming a bad file
        self.fps = fps or self.capture.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
        self._index = 0
        self._start = None

    def read(self):
        ok, frame = self.capture.read()
        if not ok:
            return False, None
        now = time.monotonic()
        if self._start is None:
            self._start = now
        wait = self._start + self._index / self.fps - now
        if wait > 0:
            time.sleep(wait)
        self._index += 1
        return True, frame

    def stream_time(self, index):
        return index / self.fps

    def get(self, prop):
        return self.fps if prop == cv2.CAP_PROP_FPS else self.capture.get(prop)

    def release(self):
        self.capture.release()


def open_capture(source, read_timeout=DEFAULT_READ_TIMEOUT, opener=None):
    """The capture of a --source value: cv2.VideoCapture for a camera index or a stream
    URL (`opener` replaces it, for tests), FileAsLive for a file. A camera or stream
    that does not open raises BadSampleError naming the source."""
    kind, target = parse_source(source)
    if kind == "file":
        return FileAsLive(target)
    opener = opener or cv2.VideoCapture
    # FFmpeg's own open and read timeouts (streams; cameras ignore them), longer than
    # ours: a stalled stream is reported as a stall, not as its end.
    ms = int((2 * read_timeout + 1) * 1000)
    quiet = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our line, not its WARNs
    try:
        capture = opener(target, cv2.CAP_ANY, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms,
                                                cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    finally:
        cv2.utils.logging.setLogLevel(quiet)
    if not capture.isOpened():
        capture.release()
        what = (f"cannot open camera {target} (no such device, in use, or no permission)"
                if kind == "camera" else "OpenCV cannot open the stream (unreachable, "
                "refused, or a format its FFmpeg does not read)")
        raise decode.BadSampleError(source, what)
    return capture


def display_available():
    """(True, "") where a window can be shown, else (False, why): on Linux an X11 or
    Wayland display must be named (DISPLAY / WAYLAND_DISPLAY); OpenCV must have a GUI
    (opencv-python-headless has none: found when the window is first shown)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (DISPLAY is not set)"
    return True, ""


def draw_label(frame_bgr, text):
    """A copy of the frame with `text` on a dark band at its top left."""
    image = frame_bgr.copy()
    if not text:
        return image
    scale = max(0.4, image.shape[0] / 600)
    thickness = max(1, int(round(scale * 1.5)))
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(image, (0, 0), (width + 8, height + base + 8), (0, 0, 0), cv2.FILLED)
    cv2.putText(image, text, (4, height + 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return image


def video_writer(path, fps, size):
    """An OpenCV writer of (height, width) frames: mp4v for .mp4, else MJPG."""
    height, width = size
    fourcc = "mp4v" if path.lower().endswith(".mp4") else "MJPG"
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise ValueError(f"{path}: OpenCV cannot write a {fourcc} video there")
    return writer


def check_output_folder(path):
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{path}: folder {directory} does not exist")


# --- the engine --------------------------------------------------------------------


@dataclasses.dataclass
class Window:
    """A due window: its frames as the model reads them (before a flow model's flow),
    the index of its last frame, that frame's stream time (s), and the indices of its
    frames."""

    frames: np.ndarray
    frame: int
    time: float
    indices: list = None


@dataclasses.dataclass
class WindowResult:
    """One scored window: the index and stream time of its last frame, the model's
    scores on it and their mean over the last `smooth` windows, the wall time of the
    scoring (ms), and the frames dropped so far."""

    frame: int
    time: float
    scores: np.ndarray
    smoothed: np.ndarray
    latency_ms: float
    dropped: int


class LiveRecognizer:
    """Scores a live source window by window (see the module docstring).

    scorer: clips uint8 [1, T, h, w, C] at the clip's decode size -> scores [1, K]
    (a Scorer, or any such function). stride: frames between windows (default
    `default_stride`); smooth: windows averaged; read_timeout: seconds without a frame
    that end the run with an error; max_seconds: stream time after which the run ends
    cleanly."""

    def __init__(self, scorer, clip, task="classification", class_names=None, stride=None,
                 smooth=1, read_timeout=DEFAULT_READ_TIMEOUT, max_seconds=None):
        if task not in CLIP_TASKS:
            raise ValueError(f"task must be one of {', '.join(CLIP_TASKS)}, not {task!r}")
        if task == "classification" and not class_names:
            raise ValueError("a classification model needs its class names")
        stride = default_stride(clip) if stride is None else stride
        if stride < 1 or smooth < 1:
            raise ValueError(f"--stride and --smooth must be at least 1, not {stride} "
                             f"and {smooth}")
        if not read_timeout > 0:
            raise ValueError(f"--read_timeout must be > 0 seconds, not {read_timeout}")
        if max_seconds is not None and not max_seconds > 0:
            raise ValueError(f"--max_seconds must be > 0, not {max_seconds}")
        self.scorer, self.clip, self.task = scorer, clip, task
        self.class_names = class_names
        self.stride, self.smooth = int(stride), int(smooth)
        self.read_timeout, self.max_seconds = float(read_timeout), max_seconds
        self.span = span_of(clip)

    @classmethod
    def from_meta(cls, scorer, meta, **kwargs):
        """From an export's meta.json (clip, task, class names)."""
        return cls(scorer, eval_clip(meta), meta["task"], meta.get("class_names"), **kwargs)

    def is_due(self, index):
        """Whether a window ends at frame `index`: the first once `span` frames are in,
        then every `stride` frames."""
        return index >= self.span - 1 and (index - self.span + 1) % self.stride == 0

    def in_due_window(self, lo, hi):
        """How many of the frames lo <= i < hi lie in some due window (all of them,
        unless the stride is longer than the span)."""
        if hi <= lo:
            return 0
        if self.stride <= self.span:
            return hi - lo

        def below(n):  # frames 0 <= i < n with i % stride < span
            whole, rest = divmod(n, self.stride)
            return whole * self.span + min(rest, self.span)

        return below(hi) - below(lo)

    def clip_of(self, window_frames):
        """A window's frames [T, h, w, C] -> the model's input (a flow model: the
        quantized flow of its frames)."""
        return self.clip.from_frames(window_frames)

    def score(self, window):
        """The scores [K] of a Window: through the scorer's `score_window(frames,
        indices)` where it has one (CnnLstmStreamer, which caches per frame), else the
        scorer on the window's clip."""
        score_window = getattr(self.scorer, "score_window", None)
        if score_window is not None:
            out = score_window(window.frames, window.indices)
        else:
            out = self.scorer(self.clip_of(window.frames)[None])
        return np.asarray(out, np.float32)[0]

    def warmup(self):
        """One scoring of a blank window, so the first real one is not slowed by the
        model's first call (tracing, allocation) and drops no frames for it; a scorer
        with a warmup of its own (CnnLstmStreamer) runs that."""
        if hasattr(self.scorer, "warmup"):
            self.scorer.warmup()
            return
        blank = np.zeros((self.clip.frames_to_read, *self.clip.decode_size,
                          1 if reads_gray(self.clip) else 3), np.uint8)
        self.scorer(self.clip_of(blank)[None])

    def text(self, scores):
        """The running label drawn on the output video."""
        if self.task == "regression":
            return f"{float(scores[0]):.3f}"
        best = int(np.argmax(scores))
        return f"{self.class_names[best]} {float(scores[best]):.2f}"

    def line(self, result, top_k=5):
        """The JSON line of a WindowResult: time, frame, the top classes of the smoothed
        scores (regression: "value"), latency_ms, dropped."""
        line = {"time": round(result.time, 4), "frame": result.frame}
        if self.task == "regression":
            line["value"] = float(result.smoothed[0])
        else:
            line["top"] = top_classes(result.smoothed, self.class_names, top_k)
        line.update(latency_ms=round(result.latency_ms, 3), dropped=result.dropped)
        return line

    def run(self, source, capture=None, output=None, display=False, opener=None,
            warmup=True):
        """A LiveRun over `source` (see parse_source): iterate it for WindowResults.
        `capture`: an opened cv2-like capture (read() -> (ok, BGR frame), optionally
        release(), get(cv2.CAP_PROP_FPS), stream_time(index)) used instead of opening
        `source`, which then only names it; `opener`: cv2.VideoCapture's stand-in for
        cameras and streams. `output`: write the video with the running label drawn;
        `display`: show it in a window (check `display_available` first)."""
        if output:
            check_output_folder(output)
        if warmup:
            self.warmup()
        return LiveRun(self, str(source), capture, output, display, opener)


class LiveRun:
    """One run of a LiveRecognizer on a source: iterate it (once) for the scored
    windows; `summary()` afterwards (or after an interruption); `stop()` ends it
    cleanly from another thread."""

    def __init__(self, recognizer, source, capture, output, display, opener):
        self.recognizer = recognizer
        self.source = source
        self._capture = capture
        self._opener = opener
        self._output = output
        self._display = display
        self._cond = threading.Condition()
        self._ring = collections.deque(maxlen=recognizer.span)
        self._mailbox = None
        self._ended = False
        self._end_reason = None  # the capture's: end of stream, max_seconds, stopped
        self._stop_reason = None  # stop()'s
        self._error = None
        self._stop = threading.Event()
        self._stalled = False
        self._label = ""
        self._shown = None  # the newest labelled frame, for the display
        self.frames = 0  # frames read
        self.skipped = 0  # due windows replaced before they were scored
        self.dropped = 0
        self.latencies = []
        self._started = None
        self._finished = None
        self._last_frame = None  # time.monotonic() of the newest frame
        self._thread = threading.Thread(target=self._read_frames, daemon=True,
                                        name=f"capture {source}")

    # The capture thread.

    def _open(self):
        if self._capture is not None:
            return self._capture
        return open_capture(self.source, self.recognizer.read_timeout, self._opener)

    def _read_frames(self):
        capture, writer, reason = None, None, "end of stream"
        recognizer = self.recognizer
        try:
            capture = self._open()
            fps = getattr(capture, "get", lambda prop: 0)(cv2.CAP_PROP_FPS) or DEFAULT_FPS
            stream_time = getattr(capture, "stream_time", None)
            first = None
            index = 0
            while not self._stop.is_set():
                ok, frame = capture.read()
                if not ok or frame is None or self._stop.is_set():
                    break
                now = time.monotonic()
                first = now if first is None else first
                seconds = stream_time(index) if stream_time else now - first
                if recognizer.max_seconds is not None and seconds >= recognizer.max_seconds:
                    reason = "max_seconds"
                    break
                self._take(index, seconds, frame, now)
                if self._output or self._display:
                    labelled = draw_label(frame, self._label)
                    if self._output:
                        if writer is None:
                            writer = video_writer(self._output, fps, frame.shape[:2])
                        writer.write(labelled)
                    self._shown = labelled
                index += 1
            if self._stop.is_set():
                reason = "stopped"
        except BaseException as error:  # handed to the scorer, which raises it
            self._error = error
        finally:
            if writer is not None:
                writer.release()
            if capture is not None and hasattr(capture, "release"):
                capture.release()
            with self._cond:
                self._ended = True
                self._end_reason = reason
                self._cond.notify_all()

    def _take(self, index, seconds, frame, now):
        """A frame into the ring buffer; a due window into the mailbox."""
        recognizer = self.recognizer
        prepared = prepare_frame(frame, recognizer.clip)
        with self._cond:
            self._ring.append(prepared)
            self.frames = index + 1
            self._last_frame = now
            if recognizer.is_due(index):
                step = recognizer.clip.stride
                frames = np.stack([self._ring[i] for i in range(0, recognizer.span, step)])
                if self._mailbox is not None:
                    self.skipped += 1
                indices = list(range(index - recognizer.span + 1, index + 1, step))
                self._mailbox = Window(frames, index, seconds, indices)
            self._cond.notify_all()

    # The scorer (the caller's thread).

    def _next_window(self):
        """The next due window, or None at the end of the stream; BadSampleError when
        no frame came for read_timeout seconds."""
        timeout = self.recognizer.read_timeout
        with self._cond:
            while True:
                if self._error is not None:
                    raise self._error
                if self._mailbox is not None:
                    window, self._mailbox = self._mailbox, None
                    return window
                if self._ended:
                    return None
                now = time.monotonic()
                last = self._last_frame if self._last_frame is not None else self._started
                left = last + timeout - now
                if left <= 0:
                    self._stop.set()
                    self._stalled = True
                    raise decode.BadSampleError(self.source, f"no frame for {timeout:g} s")
                if self._display:
                    left = min(left, _DISPLAY_POLL)
                self._cond.wait(left)
                if self._display:
                    self._cond.release()
                    try:
                        self._show()
                    finally:
                        self._cond.acquire()

    def _show(self):
        """The newest labelled frame in the display window; q or Esc stops the run."""
        image = self._shown
        if image is None:
            return
        try:
            cv2.imshow(WINDOW_NAME, image)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as error:  # OpenCV without a GUI (opencv-python-headless)
            first = str(error).strip().splitlines()[-1] if str(error).strip() else "error"
            print(f"warning: --display: OpenCV cannot show a window ({first}); not "
                  "showing the video", file=sys.stderr)
            self._display = False
            return
        if key in (ord("q"), 27):
            self.stop("stopped")

    def __iter__(self):
        recognizer = self.recognizer
        history = collections.deque(maxlen=recognizer.smooth)
        self._started = time.monotonic()
        self._thread.start()
        last_end = -1  # the last frame of the last scored window
        try:
            while True:
                window = self._next_window()
                if window is None:
                    break
                first = window.frame - recognizer.span + 1
                self.dropped += recognizer.in_due_window(last_end + 1, first)
                last_end = window.frame
                begin = time.perf_counter()
                scores = recognizer.score(window)
                history.append(scores)
                smoothed = np.mean(history, axis=0)
                latency = (time.perf_counter() - begin) * 1000
                self.latencies.append(latency)
                self._label = recognizer.text(smoothed)
                yield WindowResult(window.frame, window.time, scores, smoothed, latency,
                                   self.dropped)
        finally:
            self._finished = time.monotonic()
            self._stop.set()
            if self._display:
                try:
                    cv2.destroyWindow(WINDOW_NAME)
                except cv2.error:
                    pass
            if not self._stalled:  # a capture stuck in its read is left behind
                self._thread.join(timeout=1.0)

    def stop(self, reason="stopped"):
        """Ends the run after the window being scored (from any thread)."""
        self._stop_reason = self._stop_reason or reason
        self._stop.set()

    def _end(self):
        if self._end_reason in (None, "stopped") and self._stop_reason:
            return self._stop_reason
        return self._end_reason or "stopped"

    def summary(self):
        """The run's last line: windows, frames read, dropped frames, skipped windows,
        mean scoring latency, the frames/s sustained (frames the model saw, the read
        ones less the dropped, per second of wall time), the frames/s the scorer alone
        could keep up with (stride / mean latency), and why it ended."""
        end = self._finished or time.monotonic()
        seconds = end - self._started if self._started else 0.0
        latency = float(np.mean(self.latencies)) if self.latencies else None
        return {
            "summary": True, "source": self.source, "windows": len(self.latencies),
            "frames": self.frames, "dropped": self.dropped,
            "skipped_windows": self.skipped,
            "mean_latency_ms": None if latency is None else round(latency, 3),
            "fps": round((self.frames - self.dropped) / seconds, 2) if seconds else None,
            "scorer_fps": (round(self.recognizer.stride * 1000 / latency, 1)
                           if latency else None),
            "seconds": round(seconds, 3), "end": self._end(),
            "stride": self.recognizer.stride, "smooth": self.recognizer.smooth,
        }


class CnnLstmStreamer:
    """A cnn_lstm scored as it streams, from its Keras model: each new frame costs one
    pass of its frame CNN (the TimeDistributed `frame_features`) and one step of its
    LSTMs, the state carried from frame to frame.

    Every frame opens a window of its own: the LSTMs carry T states, one row each of a
    batch stepped together (row r for the window opened at a frame with index % T ==
    r); a window's row starts at zero on its first frame and, T frames later, holds
    exactly what the LSTMs reach over that window alone, as in training; the head's
    layers after the LSTMs turn it into the window's scores. So any window of T
    consecutive frames is scored, whatever the stride, and each frame costs one CNN pass
    and one batched LSTM step. Frames are preprocessed by the export's own serving function
    (export.serving_fn: resize, gray, the evaluation crop), so a window's scores are the
    SavedModel's on it, to float rounding.

    Call it as a Scorer (clips -> scores, window by window, nothing carried) or, as
    LiveRecognizer does, `score_window(frames [T, h, w, 3], frame indices)` on windows of
    consecutive frames in stream order; a gap in the stream (frames the live loop
    dropped) closes the open windows, and a window that was not carried through is
    replayed from its frames. `encoded` counts the CNN's frames and
    `lstm_steps` the batched LSTM steps. A cnn_lstm with frame differences (its CNN
    reads pairs of frames, the first of a window differing from the stream's) and flow
    models are refused: score those window by window."""

    def __init__(self, model, clip):
        import keras
        import tensorflow as tf

        layers = {layer.name: layer for layer in model.layers}
        others = sorted(name for name, layer in layers.items()
                        if name not in ("frame_features", "temporal_head")
                        and type(layer).__name__ != "InputLayer")
        if "frame_features" not in layers or "temporal_head" not in layers or others:
            raise ValueError(f"{model.name}: streams only a cnn_lstm whose frame CNN reads "
                             "single frames (no frame_difference)"
                             + (f"; it also has {', '.join(others)}" if others else ""))
        if clip.modality == "flow":
            raise ValueError(f"{model.name}: a flow model streams window by window")
        self.clip = clip
        self.encoded = self.lstm_steps = 0
        encoder = layers["frame_features"].layer
        head = layers["temporal_head"]
        lstms = [layer for layer in head.layers if isinstance(layer, keras.layers.LSTM)]
        if not lstms:
            raise ValueError(f"{model.name}: its temporal head has no LSTM to step")
        readout_layers = head.layers[head.layers.index(lstms[-1]) + 1:]
        cells = [layer.cell for layer in lstms]
        state_dtype = tf.as_dtype(lstms[0].compute_dtype)
        window = clip.num_frames
        frame_shape = (*clip.size, clip.channels)
        dim = encoder.output.shape[-1]

        def encode(x, training=False):
            return encoder(tf.reshape(x, [-1, *frame_shape]), training=training)

        def lstm_step(feature, slot, states):
            """Frame `index`'s feature [D] into the T windows' states (row r: the window
            opened at the frame with index % T == r; slot = index % T): row `slot`
            restarts from zero (the window opening now), every row steps, and row
            (slot + 1) % T, opened T - 1 frames ago, now holds a whole window: its last
            LSTM's output is returned with the states."""
            keep = 1.0 - tf.one_hot(slot, window, dtype=state_dtype)[:, None]
            x = tf.repeat(feature[None], window, axis=0)
            stepped = []
            for i, cell in enumerate(cells):
                x, (h, c) = cell(x, [states[2 * i] * keep, states[2 * i + 1] * keep],
                                 training=False)
                stepped += [h, c]
            return stepped, stepped[-2][(slot + 1) % window][None]

        def readout(last_output):
            x = last_output
            for layer in readout_layers:
                x = layer(x, training=False)
            return x

        self._zero_states = [tf.zeros([window, layer.units], state_dtype)
                             for layer in lstms for _ in ("h", "c")]
        self._features = tf.function(
            export.serving_fn(encode, clip),
            input_signature=[tf.TensorSpec([1, None, *clip.decode_size, 3], tf.uint8)])
        self._head = tf.function(
            lambda features: head(features, training=False),
            input_signature=[tf.TensorSpec([None, clip.num_frames, dim], tf.float32)])
        self._lstm_step = tf.function(lstm_step, input_signature=[
            tf.TensorSpec([dim], tf.float32), tf.TensorSpec([], tf.int32),
            [tf.TensorSpec(t.shape, state_dtype) for t in self._zero_states]])
        self._readout = tf.function(readout, input_signature=[
            tf.TensorSpec([None, lstms[-1].units], state_dtype)])
        self._cache = {}  # frame index -> its CNN feature [D] (the open windows' frames)
        self._done = {}  # first frame of a finished window -> the LSTMs' last output
        self._states = self._zero_states  # per LSTM h and c [T, units], rows by index % T
        self._first = None  # the first frame stepped since the windows were closed
        self._next = None  # the frame the open windows expect next

    def from_run(cls, model_dir, clip):
        """From a run directory's best.keras."""
        from keras_video import saving

        path = os.path.join(model_dir, run_dir.BEST_MODEL)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: missing; streaming a cnn_lstm frame by frame "
                                    "reads the run's Keras model")
        return cls(saving.load_model(path, compile=False), clip)

    def warmup(self):
        """Traces every step on a blank window (numbered before the stream's frame 0),
        then forgets it: the counters keep its frames."""
        blank = np.zeros((self.clip.num_frames, *self.clip.decode_size, 3), np.uint8)
        self(blank[None])
        self.score_window(blank, range(-self.clip.num_frames, 0))
        self._close_windows()
        self._cache.clear()
        self._done.clear()

    def _encode(self, frames):
        """uint8 RGB frames [n, h, w, 3] -> features [n, D]."""
        self.encoded += len(frames)
        return self._features(np.ascontiguousarray(frames[None]))["predictions"].numpy()

    def __call__(self, clips):
        clips = np.asarray(clips, np.uint8)
        features = np.stack([self._encode(clip) for clip in clips])
        return self._head(features).numpy()

    def _close_windows(self):
        self._states, self._first, self._next = self._zero_states, None, None

    def _step(self, index):
        """Frame `index` (the next of the stream) into the open windows; the window it
        completes, when all its frames were stepped, is kept in _done."""
        window = self.clip.num_frames
        if self._first is None:
            self._first = index
        self._states, last_output = self._lstm_step(self._cache[index], index % window,
                                                    self._states)
        self.lstm_steps += 1
        if index - window + 1 >= self._first:
            self._done[index - window + 1] = last_output
        self._next = index + 1

    def score_window(self, frames, indices):
        """Scores [1, K] of the window of `frames` (frame i of the stream at indices[i],
        consecutive): the CNN on the frames not seen before, one LSTM step for each
        frame not stepped before."""
        indices = [int(i) for i in indices]
        first, last = indices[0], indices[-1]
        if indices != list(range(first, first + self.clip.num_frames)):
            raise ValueError(f"a window is {self.clip.num_frames} consecutive frames, got "
                             f"frames {indices[0]}..{indices[-1]} ({len(indices)})")
        new = [k for k, i in enumerate(indices) if i not in self._cache]
        if new:
            for k, feature in zip(new, self._encode(np.asarray(frames)[new])):
                self._cache[indices[k]] = feature
        if first not in self._done:
            carried = (self._next is not None and first <= self._next <= last + 1
                       and first >= self._first)
            if not carried:  # a gap, or this window was never opened: replay it
                self._close_windows()
            for index in range(first if self._next is None else self._next, last + 1):
                self._step(index)
        scores = self._readout(self._done[first]).numpy()
        for index in [i for i in self._cache if i < first]:
            del self._cache[index]
        for start in [s for s in self._done if s <= first]:
            del self._done[start]
        return scores
