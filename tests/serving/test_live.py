"""Live recognition and timelines of clip models (keras_video.serving.live,
keras_video.serving.timeline, `predict --source / --timeline`, predict on a .tflite
file).

A tiny untrained frame_cnn (8 frames of 32 x 32) and its SavedModel, made here; small
MJPG videos written with cv2. The live engine on a file read as if live scores every
due window on exactly the file's frames, with the SavedModel's scores; a scorer made
slow by a sleep skips windows, and the frames no scored window held are counted as
dropped; a source that stalls (a fake capture whose read blocks) ends with
"SOURCE: no frame for N s" within the timeout; a camera that does not open is named.
The timeline's segments are checked on a video of a red half and a blue half, under a
stub scorer (the segment logic) and, end to end through the command, under a linear
model of the mean colour whose top label is the colour. Gray and flow models get the
windows their `serve` takes; a .tflite file scores as its SavedModel (files, timeline,
live); CnnLstmStreamer, one CNN pass and one LSTM step a frame, equals scoring each
window.
"""

import json
import os
import threading
import time

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_module, write_video

from keras_video.data import decode
from keras_video.data.pipeline import ClipSpec
from keras_video.models import build_model
from keras_video.serving import export, live, timeline

CLASSES = ["a", "b", "c"]
CLIP = ClipSpec(8, (32, 32))
RED, BLUE = (200, 30, 30), (30, 30, 200)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(export folder, Keras model): a tiny untrained frame_cnn's SavedModel and
    meta.json, its classifier weights scaled up (untrained, it scores every clip
    about 1/3 a class)."""
    keras.utils.set_random_seed(0)
    model = build_model("frame_cnn", num_classes=3, input_shape=(8, 32, 32, 3), width=0.125)
    fc = model.get_layer("fc")  # logits far enough apart that windows score differently
    fc.kernel.assign(fc.kernel * 100.0)
    folder = str(tmp_path_factory.mktemp("live") / "export")
    export.export_saved_model(model, CLIP, folder, "classification", CLASSES)
    return folder, model


@pytest.fixture(scope="module")
def serve(exported):
    return tf.saved_model.load(exported[0]).signatures["serve"]


def _textured(count, seed=0):
    """RGB frames [count, 32, 32, 3], each its own brightness and texture, so that every
    window's scores differ."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (count, 8, 8, 3)).astype(np.float32)
    frames = np.stack([cv2.resize(c, (32, 32), interpolation=cv2.INTER_CUBIC) for c in coarse]
                      or [np.zeros((32, 32, 3))])[:count]
    return np.clip(frames, 0, 255).astype(np.uint8)


def _two_halves(count, red):
    """`red` red frames, then blue ones, each with a moving white square."""
    frames = np.empty((count, 32, 32, 3), np.uint8)
    frames[:red], frames[red:] = RED, BLUE
    for t in range(count):
        x = (2 * t) % 24
        frames[t, 4:10, x:x + 6] = 255
    return frames


class Recording:
    """A scorer that keeps what it was given, optionally after a sleep."""

    def __init__(self, scorer, sleep=0.0):
        self.scorer, self.sleep, self.clips = scorer, sleep, []

    def __call__(self, clips):
        self.clips.append(np.array(clips))
        time.sleep(self.sleep)
        return self.scorer(clips)


class ArrayCapture:
    """A cv2-like capture of frames (RGB in, BGR out), each after `delay` seconds;
    after them, `read` returns end of stream, or with `stall` blocks until released."""

    def __init__(self, frames, fps=10.0, stall=False, delay=0.0):
        self.frames, self.fps, self.index, self.delay = frames, fps, 0, delay
        self.stall = threading.Event() if stall else None
        self.released = False

    def read(self):
        if self.index >= len(self.frames):
            if self.stall is not None:
                self.stall.wait()
            return False, None
        time.sleep(self.delay)
        self.index += 1
        return True, np.ascontiguousarray(self.frames[self.index - 1][..., ::-1])

    def stream_time(self, index):
        return index / self.fps

    def get(self, prop):
        return self.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def release(self):
        self.released = True


def _windows_of(frames, ends, span=8):
    return np.stack([frames[end - span + 1:end + 1] for end in ends])


def test_file_read_as_live_scores_every_window_on_its_frames(exported, serve, tmp_path):
    """A scorer that keeps up: every due window, on exactly the file's frames, with the
    SavedModel's scores, smoothed as the mean of the last two; the frames come at the
    file's rate."""
    scorer, meta = live.load_scorer(exported[0])
    video = write_video(tmp_path / "live.avi", _textured(32), fps=20)
    frames = np.stack(list(decode.iter_video_frames(video)))
    recording = Recording(scorer)
    recognizer = live.LiveRecognizer.from_meta(recording, meta, stride=4, smooth=2)
    run = recognizer.run(video)
    recording.clips.clear()  # the warm-up's blank window
    results = list(run)

    ends = list(range(7, 32, 4))
    assert [r.frame for r in results] == ends
    seen = np.concatenate(recording.clips)
    np.testing.assert_array_equal(seen, _windows_of(frames, ends))
    served = np.concatenate([serve(frames=tf.constant(w[None]))["predictions"].numpy()
                             for w in _windows_of(frames, ends)])
    np.testing.assert_allclose(np.stack([r.scores for r in results]), served,
                               rtol=1e-6, atol=1e-7)
    assert np.ptp(served[:, 0]) > 1e-3  # the windows' scores differ
    for i, result in enumerate(results):
        np.testing.assert_allclose(result.smoothed, served[max(i - 1, 0):i + 1].mean(0),
                                   rtol=1e-6)
        assert result.time == pytest.approx(result.frame / 20)
        assert result.dropped == 0 and result.latency_ms > 0
        line = recognizer.line(result, top_k=2)
        assert set(line) == {"time", "frame", "top", "latency_ms", "dropped"}
        assert [t["class"] for t in line["top"]] == [
            CLASSES[j] for j in np.argsort(-result.smoothed)[:2]]
    summary = run.summary()
    assert summary["windows"] == 7 and summary["frames"] == 32
    assert summary["dropped"] == 0 and summary["skipped_windows"] == 0
    assert summary["end"] == "end of stream"
    assert summary["seconds"] >= 31 / 20 - 0.01  # delivered at the file's 20 frames/s
    json.dumps(summary)


def test_a_slow_scorer_drops_frames_and_still_ends(exported, tmp_path):
    """A sleep of 0.4 s a window at 40 frames/s (a window every 0.1 s): the scorer
    takes the newest due window each time, the frames between are dropped and counted,
    and the run ends with the stream."""
    scorer, meta = live.load_scorer(exported[0])
    video = write_video(tmp_path / "fast.avi", _textured(40, seed=1), fps=40)
    frames = np.stack(list(decode.iter_video_frames(video)))
    slow = Recording(scorer, sleep=0.4)
    recognizer = live.LiveRecognizer.from_meta(slow, meta, stride=4)
    run = recognizer.run(video, warmup=False)
    results = list(run)

    ends = [r.frame for r in results]
    assert ends[0] == 7 and len(ends) < 9 and ends == sorted(ends)
    assert all(recognizer.is_due(end) for end in ends)
    # Still exactly the frames of each window scored.
    np.testing.assert_array_equal(np.concatenate(slow.clips), _windows_of(frames, ends))
    # Dropped: the frames between scored windows (stride 4 <= span 8: all were due).
    gaps = [max(0, (b - 7) - (a + 1)) for a, b in zip([-1] + ends, ends)]
    assert [r.dropped for r in results] == list(np.cumsum(gaps))
    summary = run.summary()
    assert summary["dropped"] == sum(gaps) > 0
    assert summary["skipped_windows"] == 9 - len(ends) > 0
    assert summary["frames"] == 40 and summary["end"] == "end of stream"


@pytest.mark.parametrize("before", [0, 10])
def test_a_stalled_source_ends_with_one_line_within_the_timeout(before):
    """A capture whose read blocks (before any frame, or after 10): the run ends with
    "SOURCE: no frame for N s" after about N s, never a hang."""
    capture = ArrayCapture(_textured(before), stall=True)
    recognizer = live.LiveRecognizer(lambda clips: np.full((len(clips), 3), 1 / 3), CLIP,
                                     class_names=CLASSES, read_timeout=0.5)
    started = time.monotonic()
    results = []
    try:
        with pytest.raises(decode.BadSampleError) as caught:
            for result in recognizer.run("fake-camera", capture=capture):
                results.append(result)
    finally:
        capture.stall.set()
    assert str(caught.value) == "fake-camera: no frame for 0.5 s"
    assert 0.5 <= time.monotonic() - started < 3.0
    assert [r.frame for r in results] == ([7] if before else [])


def test_a_source_that_does_not_open_is_named():
    """A camera index that OpenCV cannot open (a stand-in opener: no device is
    touched), a stream URL, a missing file: one line naming the source."""
    asked = []

    class Closed:
        def isOpened(self):
            return False

        def release(self):
            pass

    def opener(target, *args):
        asked.append(target)
        return Closed()

    recognizer = live.LiveRecognizer(lambda clips: np.ones((1, 3)) / 3, CLIP,
                                     class_names=CLASSES)
    with pytest.raises(decode.BadSampleError) as caught:
        list(recognizer.run("3", opener=opener, warmup=False))
    assert str(caught.value).startswith("3: cannot open camera 3 ")
    assert asked == [3]
    with pytest.raises(decode.BadSampleError, match=r"^rtsp://host/x: OpenCV cannot open"):
        live.open_capture("rtsp://host/x", opener=opener)
    with pytest.raises(decode.BadSampleError, match=r"missing\.avi: file does not exist"):
        list(recognizer.run("missing.avi", warmup=False))
    assert "\n" not in str(caught.value)


def test_labelled_output_max_seconds_and_regression(tmp_path, monkeypatch):
    """--output: every frame written with the running value drawn; --max_seconds ends
    the run cleanly at that stream time; a regression model's lines have "value"."""
    frames = _textured(30, seed=2)
    capture = ArrayCapture(frames, fps=10.0, delay=0.02)
    recognizer = live.LiveRecognizer(lambda clips: clips.mean(axis=(1, 2, 3, 4))[:, None],
                                     CLIP, "regression", stride=2, smooth=3, max_seconds=2.0)
    output = str(tmp_path / "labelled.avi")
    run = recognizer.run("array", capture=capture, output=output)
    lines = [recognizer.line(r) for r in run]
    summary = run.summary()
    assert summary["frames"] == 20 and summary["end"] == "max_seconds"
    assert capture.released
    assert lines and all(set(line) == {"time", "frame", "value", "latency_ms", "dropped"}
                         for line in lines)
    written = np.stack(list(decode.iter_video_frames(output)))
    assert written.shape == (20, 32, 32, 3)
    band = np.abs(written[:, :4].astype(int) - frames[:20, :4]).mean(axis=(1, 2, 3))
    assert band[-1] > 20  # the label's band at the top

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(live.sys, "platform", "linux")
    assert live.display_available() == (False, "no display (DISPLAY is not set)")
    with pytest.raises(ValueError, match="--stride and --smooth must be at least 1"):
        live.LiveRecognizer(None, CLIP, "regression", stride=0)


def _colour_scorer(clips):
    """Scores of clips by how red they are: the fraction of red-dominant pixels."""
    clips = clips.astype(np.float32)
    red = (clips[..., 0] > clips[..., 2]).mean(axis=(1, 2, 3))
    return np.stack([0.05 + 0.9 * red, 0.95 - 0.9 * red, np.full_like(red, 0.05)], 1)


def test_timeline_segments_of_a_video_in_two_halves(tmp_path):
    """26 red frames then 22 blue at 16 frames/s, windows of 8 every 4: the windows
    starting at 20 (6 red) and 24 (2 red) disagree, so the boundary is the midpoint of
    their centres, 1.625 s, which is where the colour changes (26 / 16)."""
    video = write_video(tmp_path / "halves.avi", _two_halves(48, 26), fps=16)
    result = timeline.build(video, _colour_scorer, CLIP, "classification", CLASSES,
                            stride=4)
    assert result.fps == 16 and result.frames == 48
    assert list(result.starts) == list(range(0, 41, 4))
    np.testing.assert_allclose(result.times, (result.starts + 4) / 16)
    frames = np.stack(list(decode.iter_video_frames(video)))
    expected = _colour_scorer(np.stack([frames[s:s + 8] for s in result.starts]))
    np.testing.assert_allclose(result.scores, expected, rtol=1e-6)
    first, second = result.segments
    assert (first.label, first.start, first.end) == ("a", 0.0, 1.625)
    assert (second.label, second.start, second.end) == ("b", 1.625, 3.0)
    assert first.score == pytest.approx(expected[:6, 0].mean(), rel=1e-6)
    assert second.score == pytest.approx(expected[6:, 1].mean(), rel=1e-6)

    # Centred smoothing over 3 windows keeps the boundary.
    smooth = timeline.build(video, _colour_scorer, CLIP, "classification", CLASSES,
                            stride=4, smooth=3)
    assert [(s.label, s.start, s.end) for s in smooth.segments] == [
        ("a", 0.0, 1.625), ("b", 1.625, 3.0)]
    np.testing.assert_allclose(smooth.smoothed[5], expected[4:7].mean(0), rtol=1e-6)
    np.testing.assert_allclose(smooth.smoothed[0], expected[:2].mean(0), rtol=1e-6)

    csv_path = str(tmp_path / "out" / "halves.csv")
    os.makedirs(os.path.dirname(csv_path))
    picture = timeline.write(result, csv_path)
    assert picture == str(tmp_path / "out" / "halves.png") and os.path.getsize(picture)
    assert open(csv_path).read().splitlines() == [
        "start,end,label,score", f"0.0000,1.6250,a,{first.score:.6f}",
        f"1.6250,3.0000,b,{second.score:.6f}"]
    document = json.loads(timeline.render(result, "json"))
    assert [s["label"] for s in document["segments"]] == ["a", "b"]
    assert document["windows"][0] == {"time": 0.25, "frames": [0, 7], "label": "a",
                                      "score": pytest.approx(expected[0, 0])}


def test_predict_runs_a_tflite_file_as_its_saved_model(exported, tmp_path):
    """--model_dir=.../model.tflite (meta.json beside it): the same scores as the
    SavedModel on a video file, and the same timeline."""
    from keras_video.commands.predict import Predictor
    from keras_video.serving import tflite

    folder, model = exported
    path = os.path.join(folder, "model.tflite")
    tflite.write(tflite.convert(model, clip=CLIP), path)
    video = write_video(tmp_path / "clip.avi", _textured(20, seed=3), fps=10)
    saved, lite = Predictor(folder)(video, top_k=3), Predictor(path)(video, top_k=3)
    assert [s["class"] for s in lite] == [s["class"] for s in saved]
    np.testing.assert_allclose([s["score"] for s in lite], [s["score"] for s in saved],
                               atol=1e-5)
    runs = [timeline.build(video, live.load_scorer(p)[0], CLIP, "classification", CLASSES,
                           stride=3, batch_size=4) for p in (folder, path)]
    assert len(runs[0].starts) == 5  # 4 + 1: the last batch smaller
    np.testing.assert_allclose(runs[1].scores, runs[0].scores, atol=1e-5)
    scorer, meta = live.load_scorer(path)
    recognizer = live.LiveRecognizer.from_meta(scorer, meta, stride=4)
    results = list(recognizer.run("array", capture=ArrayCapture(_textured(20, seed=3))))
    windows = _windows_of(_textured(20, seed=3), [r.frame for r in results])
    np.testing.assert_allclose(np.stack([r.scores for r in results]),
                               live.load_scorer(folder)[0](windows), atol=1e-5)
    with pytest.raises(FileNotFoundError, match="no such TensorFlow Lite file"):
        live.load_scorer(os.path.join(folder, "other.tflite"))


def _pooled_model(channels, seed):
    """Clip [8, 32, 32, channels] -> 3 class scores from its mean per channel."""
    rng = np.random.default_rng(seed)
    inputs = keras.Input((8, 32, 32, channels))
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling3D()(inputs)))
    dense.set_weights([rng.normal(0, 0.05, (channels, 3)).astype(np.float32),
                       np.zeros(3, np.float32)])
    return model


@pytest.mark.parametrize("kind", ["gray", "flow"])
def test_gray_and_flow_models_live_and_timeline(kind, tmp_path):
    """A gray model's windows are RGB (its serve converts them, as for a video file);
    a flow model's are gray frames, one more than its flows, turned into its quantized
    flow. Live and timeline give the same first window."""
    clip = (ClipSpec(8, (32, 32), grayscale=True) if kind == "gray"
            else ClipSpec(8, (32, 32), modality="flow"))
    folder = export.export_saved_model(_pooled_model(clip.channels, 4), clip,
                                       str(tmp_path / "export"), "classification", CLASSES)
    scorer, meta = live.load_scorer(folder)
    video = write_video(tmp_path / "v.avi", _textured(20, seed=5), fps=100)
    recording = Recording(scorer)
    recognizer = live.LiveRecognizer.from_meta(recording, meta, stride=5)
    run = recognizer.run(video)
    recording.clips.clear()
    results = list(run)
    span = clip.frames_to_read
    assert [r.frame for r in results] == list(range(span - 1, 20, 5))
    frames = np.stack(list(decode.iter_video_frames(video)))
    first = frames[:span]
    if kind == "flow":
        gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY)[..., None] for f in first])
        first = clip.from_frames(gray)
    assert recording.clips[0].shape == (1, 8, 32, 32, 2 if kind == "flow" else 3)
    np.testing.assert_array_equal(recording.clips[0][0], first)
    result = timeline.build(video, scorer, clip, "classification", CLASSES, stride=5)
    np.testing.assert_allclose(result.scores[0], results[0].scores, rtol=1e-6, atol=1e-7)


def test_cnn_lstm_streamer_equals_scoring_each_window(tmp_path):
    """CnnLstmStreamer from a saved cnn_lstm (gray, so the serving preprocessing
    converts): each window's scores are the serving function's on the window, and every
    frame went through the CNN once."""
    from keras_video import saving

    keras.utils.set_random_seed(2)
    clip = ClipSpec(8, (32, 32), grayscale=True)
    built = build_model("cnn_lstm", input_shape=(8, 32, 32, 1), width=0.25,
                        lstm_units=(8,), task="classification", num_classes=3)
    head = built.get_layer("temporal_head").get_layer("predictions")
    head.kernel.assign(head.kernel * 20.0)
    built.save(tmp_path / "best.keras")
    model = saving.load_model(str(tmp_path / "best.keras"), compile=False)
    streamer = live.CnnLstmStreamer(model, clip)
    frames = _textured(30, seed=6)
    recognizer = live.LiveRecognizer(streamer, clip, class_names=CLASSES, stride=3)
    run = recognizer.run("array", capture=ArrayCapture(frames, delay=0.01))
    encoded = streamer.encoded  # the warm-up's
    results = list(run)
    ends = [r.frame for r in results]
    assert ends[0] == 7 and len(ends) >= 3
    windows = _windows_of(frames, ends)
    whole = export.serving_fn(model, clip)(tf.constant(windows))["predictions"].numpy()
    np.testing.assert_allclose(np.stack([r.scores for r in results]), whole, atol=1e-5)
    assert np.ptp(whole[:, 0]) > 1e-3
    read = set().union(*(range(end - 7, end + 1) for end in ends))
    assert streamer.encoded - encoded == len(read)
    np.testing.assert_allclose(streamer(windows[:2]), whole[:2], atol=1e-5)

    with pytest.raises(ValueError, match="no frame_difference"):
        live.CnnLstmStreamer(build_model("cnn_lstm", input_shape=(8, 32, 32, 1), width=0.25,
                                         lstm_units=(8,), frame_difference=True), clip)


def test_cnn_lstm_streamer_steps_the_lstm_once_a_frame():
    """Windows at stride 3 over a stream, then a gap and a window back in time: every
    window's scores equal the serving function's on it (stacked LSTMs), each frame costs
    one CNN pass and one batched LSTM step while the stream is followed, and a window
    the carried states cannot give is replayed from its frames."""
    keras.utils.set_random_seed(3)
    clip = ClipSpec(8, (32, 32), grayscale=True)
    model = build_model("cnn_lstm", input_shape=(8, 32, 32, 1), width=0.25,
                        lstm_units=(8, 6), task="classification", num_classes=3)
    head = model.get_layer("temporal_head").get_layer("predictions")
    head.kernel.assign(head.kernel * 20.0)
    streamer = live.CnnLstmStreamer(model, clip)
    streamer.warmup()
    serve = export.serving_fn(model, clip)
    frames = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    encoded, steps = streamer.encoded, streamer.lstm_steps
    scores, wanted = [], []
    for start in (0, 3, 6, 9, 12):
        window = frames[start:start + 8]
        scores.append(streamer.score_window(window, range(start, start + 8)))
        wanted.append(serve(tf.constant(window[None]))["predictions"].numpy())
    np.testing.assert_allclose(np.concatenate(scores), np.concatenate(wanted), atol=1e-6)
    assert np.ptp(np.concatenate(wanted)[:, 1]) > 1e-3
    assert streamer.encoded - encoded == 20 and streamer.lstm_steps - steps == 20
    # A gap (frames 20..24 never handed over), then a window that starts before the
    # frames already stepped: both scored as the model scores them.
    for start, new_steps in ((25, 8), (22, 8)):
        steps = streamer.lstm_steps
        window = frames[start:start + 8]
        np.testing.assert_allclose(
            streamer.score_window(window, range(start, start + 8)),
            serve(tf.constant(window[None]))["predictions"].numpy(), atol=1e-6)
        assert streamer.lstm_steps - steps == new_steps
    with pytest.raises(ValueError, match="8 consecutive frames"):
        streamer.score_window(frames[:8], [0, 1, 2, 3, 5, 6, 7, 8])


def _mean_colour_model():
    """Classes a, b, c from a clip's mean colour: a for red, b for blue (c never)."""
    inputs = keras.Input((8, 32, 32, 3))
    x = keras.layers.GlobalAveragePooling3D()(inputs)
    dense = keras.layers.Dense(3, activation="softmax")
    model = keras.Model(inputs, dense(x))
    kernel = np.array([[0.05, -0.05, 0], [0, 0, 0], [-0.05, 0.05, 0]], np.float32)
    dense.set_weights([kernel, np.zeros(3, np.float32)])
    return model


@pytest.mark.slow
def test_predict_command_timeline_and_live(tmp_path):
    """The command end to end on a model whose top label is the colour: the timeline's
    segments and picture; live on the file, with a labelled output and --display
    warned off where there is no display."""
    folder = export.export_saved_model(_mean_colour_model(), CLIP, str(tmp_path / "export"),
                                       "classification", CLASSES)
    video = write_video(tmp_path / "halves.avi", _two_halves(48, 26), fps=16)
    out = tmp_path / "timeline.json"
    result = run_module("keras_video.predict", f"--model_dir={folder}", "--timeline",
                        video, "--stride=4", "--smooth=3", f"--output={out}", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    document = json.load(open(out))
    assert [(s["label"], s["start"], s["end"]) for s in document["segments"]] == [
        ("a", 0.0, 1.625), ("b", 1.625, 3.0)]
    assert os.path.getsize(tmp_path / "timeline.png")
    assert json.loads(result.stdout.splitlines()[-1])["segments"] == 2

    labelled = tmp_path / "labelled.avi"
    result = run_module("keras_video.predict", f"--model_dir={folder}",
                        f"--source={video}", "--stride=8", f"--output={labelled}",
                        "--display", timeout=300, env={"DISPLAY": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    *windows, summary = lines
    assert [w["frame"] for w in windows] == list(range(7, 48, 8))
    assert [w["top"][0]["class"] for w in windows] == ["a"] * 3 + ["b"] * 3
    assert summary["summary"] and summary["frames"] == 48 and summary["dropped"] == 0
    assert "warning: --display: no display" in result.stderr
    assert decode.count_frames(str(labelled)) == 48

    result = run_module("keras_video.predict", f"--model_dir={folder}", "--source=x.avi",
                        video, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: give one of --source, --timeline and video files, not --source and "
        "video files")
