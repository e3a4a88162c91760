"""Predict with an exported model: python -m keras_video.predict --model_dir D PATH...

PATH: video files or frame folders. Prints one JSON line per input,
{"path": ..., "prediction": ...}: a number for regression, the top classes with their
scores for classification. Only the SavedModel in D/export and its meta.json are read,
so no model code is needed.

For a segmentation run (--model=dff or frame_seg) or a detection run (rfcn,
dff_rfcn), PATH is a video processed frame by frame with the streaming engine
(keras_video.serving.streaming) on the SavedModel's signatures:

    python -m keras_video.predict --model_dir D video.mp4 --key_interval 10 \
        [--mode dff|per_frame|dis] [--output out.mp4] [--detections dets.jsonl]

--output writes the video with the segmentation alpha-blended in a colour per class,
or with the detected boxes, class names and scores drawn, and the key frames framed in
white and marked "KEY"; --detections writes one JSON line a frame with its boxes; the
JSON line printed per video gives frames/s.

A classification or regression run (cnn_lstm, c3d, r3d*, r2plus1d*, frame_cnn) also
runs live, on a camera, a stream, or a file read as if live (keras_video.serving.live):

    python -m keras_video.predict --model_dir D --source=0 [--stride=N] [--smooth=K] \
        [--top_k=5] [--output=out.mp4] [--display] [--max_seconds=S] [--read_timeout=10]

SOURCE: a camera index, a stream URL (rtsp://, http://), or a video file delivered at
its frame rate. One JSON line per window, {"time", "frame", "top" (regression:
"value"), "latency_ms", "dropped"}, then a summary line {"summary": true, "windows",
"frames", "dropped", "mean_latency_ms", "fps", ...}; --output writes the video with the
running label drawn, --display shows it where there is a display (q ends the run).
With --cache_features a cnn_lstm run streams from its best.keras: one pass of its frame
CNN and one step of its LSTMs a frame, the state carried (live.CnnLstmStreamer).
A source that gives no frame for --read_timeout seconds ends with
`error: SOURCE: no frame for N s`.

And over a long video, the timeline of its windows (keras_video.serving.timeline):

    python -m keras_video.predict --model_dir D --timeline video.mp4 [--stride=N] \
        [--smooth=K] [--timeline_format=json|csv] [--output=timeline.json]

the segments where the smoothed top label holds (start s, end s, label, mean score),
written to --output (and the picture of the scores over time beside it, .png) or printed.

--model_dir may name a .tflite file (keras_video.export --format=tflite) instead: it runs
with the meta.json of the folder it lies in, for video files, --source and --timeline.
"""

import json
import sys


from keras_video.commands import cli

import numpy as np
from absl import flags

from keras_video import run_dir
from keras_video.serving import live, timeline
from keras_video.data import decode, pipeline
from keras_video.tasks import pictures


def define_flags():
    """The command's flags (defined when it runs, so that importing this module into a
    process with other commands defines nothing)."""
    flags.DEFINE_string("model_dir", None,
                        "training run directory (or its export/ folder)", required=True)
    flags.DEFINE_integer("top_k", 5, "classes listed per input (classification)")
    flags.DEFINE_enum("on_bad_sample", "error", ["error", "skip"],
                      "skip: print an error line for a bad input and go on")
    flags.DEFINE_enum("mode", None, ["dff", "per_frame", "dis"],
                      "segmentation / detection: how frames between key frames are made "
                      "(streaming engine); default dff where the model has a flow net, "
                      "else per_frame")
    flags.DEFINE_integer("key_interval", 10,
                         "segmentation: a key frame every this many frames")
    flags.DEFINE_string("output", None, "segmentation / detection: write the overlaid "
                        "video here (.mp4: mp4v, else MJPG), one input only; --source: "
                        "the video with the running label; --timeline: the timeline "
                        "(.json or .csv) and its picture beside it (.png)")
    flags.DEFINE_float("alpha", 0.5, "segmentation: opacity of the class colours")
    flags.DEFINE_string("detections", None, "detection: write every frame's detections "
                        "here, one JSON line a frame (path, frame, key, detections: box "
                        "x1 y1 x2 y2 in the video's pixels, class, score)")
    flags.DEFINE_float("min_score", 0.3, "detection: the lowest score drawn and written")
    flags.DEFINE_string("source", None, "live: a camera index (0), a stream URL "
                        "(rtsp://..., http://...) or a video file read as if live (at its "
                        "frame rate); one JSON line per window")
    flags.DEFINE_string("timeline", None, "a long video: scores window by window and the "
                        "segments where the smoothed top label holds")
    flags.DEFINE_integer("stride", None, "--source / --timeline: a window every this many "
                         "frames (default: half a window)")
    flags.DEFINE_integer("smooth", 1, "--source / --timeline: scores averaged over this "
                         "many windows (live: the last ones; timeline: centred)")
    flags.DEFINE_boolean("display", False, "--source: show the labelled video in a window "
                         "(where there is a display; q ends the run)")
    flags.DEFINE_float("max_seconds", None, "--source: end after this much stream time")
    flags.DEFINE_float("read_timeout", live.DEFAULT_READ_TIMEOUT,
                       "--source: seconds without a frame after which the run ends with an "
                       "error")
    flags.DEFINE_boolean("cache_features", False, "--source, a cnn_lstm run: stream it "
                         "from the run's best.keras, one frame CNN pass and one LSTM "
                         "step a frame with the state carried, not the whole window "
                         "through the SavedModel")
    flags.DEFINE_enum("timeline_format", None, list(timeline.FORMATS),
                      "--timeline: json or csv (default: from --output's ending, else json)")


class Predictor:
    """Runs the exported `serve` signature on decoded clips: a run's SavedModel, or a
    .tflite file of it (model_dir ending in .tflite; the meta.json beside it)."""

    def __init__(self, model_dir):
        self.scorer, self.meta = live.load_scorer(model_dir)
        self.clip = live.eval_clip(self.meta)

    def __call__(self, path, top_k=5):
        clip = self.clip
        if clip.modality == "flow":  # the flow serve takes, at the decode size
            frames = pipeline.clip_reader(clip)(path.encode(), None)
        else:  # RGB frames at the decode size: serve converts to gray and crops
            frames = decode.read_clip(path, clip.num_frames, clip.sampling, clip.stride,
                                      None, clip.decode_size)
        out = self.scorer(frames[None])[0]
        if self.meta["task"] == "regression":
            return float(out[0])
        return live.top_classes(out, self.meta["class_names"], top_k)


class StreamPredictor:
    """Segments a video, or detects its objects, with the streaming engine on a
    dff / frame_seg / dff_rfcn / rfcn run's SavedModel."""

    def __init__(self, model_dir, meta, mode=None, key_interval=10):
        from keras_video.serving import streaming

        if mode is None:
            mode = "dff" if "propagate" in meta["signatures"] else "per_frame"
        self.meta = meta
        self.detection = meta["task"] == "detection"
        self.class_names = meta["class_names"]
        self.engine = streaming.StreamingEngine.from_export(
            run_dir.export_dir_of(model_dir), mode, key_interval,
            output="detections" if self.detection else "labels")
        self.engine.warmup()

    def _picture(self, frame, result, alpha, min_score):
        if self.detection:
            return pictures.draw_detections(frame, result.output, self.class_names,
                                            key=result.is_key, min_score=min_score)
        return pictures.overlay(frame, result.output, len(self.class_names), alpha,
                                key=result.is_key)

    def _detections(self, frame, result):
        """The frame's detections in its own pixels, best first."""
        from keras_video.tasks import detection

        boxes = detection.resize_boxes(result.output["boxes"], self.engine.frame_size,
                                       frame.shape[:2])
        return [{"box": [round(float(v), 1) for v in box],
                 "class": self.class_names[int(label) - 1], "score": float(score)}
                for box, score, label in zip(boxes, result.output["scores"],
                                             result.output["labels"])]

    def __call__(self, path, output=None, alpha=0.5, frames_out=None, min_score=0.3):
        import cv2

        from keras_video.serving import streaming

        capture = decode._open_video(path)
        fps = capture.get(cv2.CAP_PROP_FPS) or 15.0
        capture.release()
        writer, results = None, []
        try:
            for frame, result in _paired(decode.iter_video_frames(path), self.engine):
                results.append(result)
                if self.detection:
                    found = self._detections(frame, result)
                    result.output["boxes"] = np.array([d["box"] for d in found],
                                                      np.float32).reshape(-1, 4)
                    if frames_out is not None:
                        frames_out.write(json.dumps({
                            "path": path, "frame": result.index, "key": result.is_key,
                            "detections": [d for d in found if d["score"] >= min_score]})
                            + "\n")
                if output is None:
                    continue
                if writer is None:
                    live.check_output_folder(output)
                    writer = live.video_writer(output, fps, frame.shape[:2])
                image = self._picture(frame, result, alpha, min_score)
                writer.write(np.ascontiguousarray(image[..., ::-1]))
        finally:
            if writer is not None:
                writer.release()
        if not results:
            raise decode.BadSampleError(path, "no frame could be decoded")
        timing = streaming.timing_summary(results)
        seconds = sum(r.seconds for r in results)
        return {"frames": len(results), "key_frames": sum(r.is_key for r in results),
                "fps": len(results) / seconds, "key_ms": timing["key_ms"],
                "other_ms": timing["other_ms"], "mode": self.engine.mode,
                "key_interval": self.engine.key_interval, "output": output}


def _paired(frames, engine):
    for index, frame in enumerate(frames):
        yield frame, engine.step(index, frame)


def _export_meta(model_dir):
    return live.export_meta(model_dir)


def main(argv):
    paths = argv[1:]
    FLAGS = flags.FLAGS
    given = [name for name, on in (("--source", FLAGS.source is not None),
                                   ("--timeline", FLAGS.timeline is not None),
                                   ("video files", bool(paths))) if on]
    if not given:
        raise ValueError("give one or more video files or frame folders to predict, "
                         "--source (live) or --timeline VIDEO")
    if len(given) > 1:
        raise ValueError(f"give one of --source, --timeline and video files, not "
                         f"{' and '.join(given)}")
    meta = _export_meta(FLAGS.model_dir)
    if meta.get("task") in ("segmentation", "detection"):
        if live.is_tflite(FLAGS.model_dir) or not paths:
            raise ValueError(f"{FLAGS.model_dir}: a {meta['task']} run is predicted from "
                             "its SavedModel on video files, frame by frame; --source, "
                             "--timeline and .tflite files are for clip models")
        return _stream(paths, meta)
    if FLAGS.source is not None:
        return _live(meta)
    if FLAGS.timeline is not None:
        return _timeline(meta)
    if FLAGS.output or FLAGS.detections:
        raise ValueError("--output and --detections with video files are for "
                         f"segmentation and detection runs; {FLAGS.model_dir} is a "
                         f"{meta.get('task')} model (--output goes with --source or "
                         "--timeline)")
    predictor = Predictor(FLAGS.model_dir)
    _print_lines(paths, lambda path: {"prediction": predictor(path, FLAGS.top_k)})


def _print_lines(paths, result_of):
    """One JSON line per input, {"path": ..., **result_of(path)}; a bad input stops the
    command (--on_bad_sample=error) or gets an error line (skip), counted at the end."""
    failed = 0
    for path in paths:
        try:
            line = {"path": path, **result_of(path)}
        except decode.BadSampleError as e:
            if flags.FLAGS.on_bad_sample == "error":
                raise
            failed += 1
            line = {"path": path, "error": e.problem}
        print(json.dumps(line), flush=True)
    if failed:
        print(f"{failed} of {len(paths)} inputs could not be read", file=sys.stderr)


def _stream(paths, meta):
    FLAGS = flags.FLAGS
    if FLAGS.output and len(paths) > 1:
        raise ValueError(f"--output takes one input video, got {len(paths)}")
    if FLAGS.detections and meta["task"] != "detection":
        raise ValueError("--detections writes a detection run's boxes; this is a "
                         f"{meta['task']} run")
    predictor = StreamPredictor(FLAGS.model_dir, meta, FLAGS.mode, FLAGS.key_interval)
    frames_out = open(FLAGS.detections, "w") if FLAGS.detections else None
    try:
        _print_lines(paths, lambda path: predictor(path, FLAGS.output, FLAGS.alpha,
                                                   frames_out, FLAGS.min_score))
    finally:
        if frames_out is not None:
            frames_out.close()


def _live(meta):
    """--source: one JSON line per scored window, then the summary line."""
    FLAGS = flags.FLAGS
    if FLAGS.cache_features:
        scorer = live.CnnLstmStreamer.from_run(FLAGS.model_dir, live.eval_clip(meta))
    else:
        scorer, meta = live.load_scorer(FLAGS.model_dir)
    recognizer = live.LiveRecognizer.from_meta(
        scorer, meta, stride=FLAGS.stride, smooth=FLAGS.smooth,
        read_timeout=FLAGS.read_timeout, max_seconds=FLAGS.max_seconds)
    display = FLAGS.display
    if display:
        display, why = live.display_available()
        if not display:
            print(f"warning: --display: {why}; not showing the video", file=sys.stderr)
    run = recognizer.run(FLAGS.source, output=FLAGS.output, display=display)
    try:
        for result in run:
            print(json.dumps(recognizer.line(result, FLAGS.top_k)), flush=True)
    except KeyboardInterrupt:
        run.stop("interrupted")
    print(json.dumps(run.summary()), flush=True)


def _timeline(meta):
    """--timeline: the timeline to --output (and its picture beside it), or printed."""
    FLAGS = flags.FLAGS
    if FLAGS.output is not None:
        live.check_output_folder(FLAGS.output)  # before the whole video is scored
    scorer, meta = live.load_scorer(FLAGS.model_dir)
    result = timeline.build(FLAGS.timeline, scorer, live.eval_clip(meta), meta["task"],
                            meta.get("class_names"), FLAGS.stride, FLAGS.smooth)
    fmt = FLAGS.timeline_format
    if FLAGS.output is None:
        sys.stdout.write(timeline.render(result, fmt or "json"))
        return
    picture = timeline.write(result, FLAGS.output, fmt)
    print(json.dumps({"path": FLAGS.timeline, "output": FLAGS.output, "plot": picture,
                      "windows": len(result.starts), "segments": len(result.segments)}),
          flush=True)


def run():
    """The command line: flags, then main (a bad input is one line, not a traceback)."""
    define_flags()
    cli.run(main)
