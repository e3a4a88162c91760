"""Input-pipeline throughput: the seed's naive loop vs our tf.data pipelines vs raw decode,
and whether the input pipeline slows a training epoch.

    python experiments/bench_input_pipeline.py [--num 200] [--frames 30] [--size 64]
        [--repeats 3] [--data DIR] [--investigate]
    python experiments/bench_input_pipeline.py --train_epoch [--epoch_clips 96]
        [--repeats 3] [--data DIR]

Throughput (the default). It writes `--num` oscillation clips (224x224, 30 frames, MJPG
.avi, the `generate --format video` layout) to a temporary folder (`--data` takes
instead any layout `keras_video.data.sources.from_spec` accepts) and converts them with
`keras_video.data.to_tfrecord` (8 shards, frames stored as they are, at their own
size: the reader pays for the full JPEG decode). On the SAME videos it measures clips per
second of:

  (a) naive: the Keras TimeDistributed seed's loop: one Python thread, for each video
      `cv2.VideoCapture` reading every frame into a list, `cv2.resize` of each frame to
      --size, `np.array`;
  (b) OpenCV pipeline: `make_dataset(samples, ClipSpec(frames, (size, size), "uniform"),
      batch_size=8, training=False)` iterated to the end (no cache: every epoch decodes);
      what `train` runs, JPEG frames decoded at reduced scale (keras_video.data.decode);
  (t) TFRecord pipeline: the same `make_dataset` call on the converted shards
      (`--data=tfrecord:DIR`; all TensorFlow ops, keras_video.data.tfrecord);
  (c) raw decode bound: OpenCV decode alone on all cores: a ThreadPoolExecutor of
      `os.cpu_count()` threads (cv2 releases the GIL), each task opening one video and
      `cap.read()`ing every frame, counting them; no resize, colour conversion or copy;
  (c2) reduced decode bound (MJPEG only): as (c), but the video's JPEG packets decoded
      with cv2.imdecode at the reduction (b) uses, nothing else;
  (bV) (MJPEG only) (b) with every video opened and demuxed by FFmpeg
      (cv2.VideoCapture), not found by keras_video.data.avi: the pipeline before avi.py;
  (b0) (b) with `decode.REDUCED_JPEG = False`: every frame decoded at full size, then
      INTER_AREA: the pipeline before reduced decoding.

The methods are alternated (a, b, t, c, ...) for --repeats rounds after one warm-up
round each, so that load from other processes hits all of them alike; the medians and
the ratios are printed as a markdown table. The CPU ms/clip column (CPU time of the whole
process, all threads, per clip) is the work each method does; it is far less sensitive
than clips/s to other processes.

--investigate adds, in the same alternation, variants that split the gap b..c:
  (bA), (tA) (b) and (t) with tf.data's autotuner switched back on (the pipelines before
      `pipeline.prefetched` turned it off);
  (d) `decode.read_clip` (the pipeline's per-clip work) on the same thread pool,
      without tf.data;
  (e) (c2) plus the INTER_AREA resize and cvtColor per frame, no Python bookkeeping;
  (f) (b) with `decode.resize_frame` swapped for a plain `cv2.resize` (INTER_LINEAR,
      the seed's, which aliases thin lines): the pipeline without the area filter's cost;
  (g) (b) with `cv2.setNumThreads(1)` (OpenCV's parallel_for inside resize/cvtColor
      no longer competing with tf.data's threads);
  (h) (b) with `threading.private_threadpool_size = CPUs` and `deterministic=False`;
  (i) (b) yielding float32 clips (each clip cast before batching): the pipeline before
      it yielded uint8.

--train_epoch: does the input pipeline slow training? One epoch of r3d18 (width 1.0,
16x112x112 RGB clips, batch 8, SGD) over --epoch_clips clips, fed (1) by the OpenCV
pipeline, (2) by the TFRecord pipeline, (3) from clips already in memory (the OpenCV
pipeline's output of one epoch, held as the uint8 array it yields), alternated for
--repeats rounds after a warm-up round; median seconds per epoch and the ratios to (3).
Data: a UCF101-like workload by default, `--epoch_clips` motion-benchmark videos of 32 frames
at UCF101's 240x320, MJPG, with C3D's training recipe ClipSpec(16, (112, 112),
"random", resize=(128, 171), crop="random", flip=True): each clip is a random
temporal crop, decoded and resized to 128x171, randomly cropped to 112x112 and flipped.
"""

import argparse
import concurrent.futures
import contextlib
import datetime
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from keras_video import runtime  # noqa: E402

RUNTIME = runtime.start()  # TensorFlow's CPU kernels as the commands choose them

import tensorflow as tf  # noqa: E402

from keras_video.data import (avi, decode, generate, sources,  # noqa: E402
                              to_tfrecord, transforms)
from keras_video.data.pipeline import ClipSpec, make_dataset  # noqa: E402
from keras_video.data.samples import Samples


def naive_loop(paths, size):
    """(a) The seed's loop: one thread, read every frame, resize each, np.array."""
    total = 0
    for path in paths:
        cap = cv2.VideoCapture(path)
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(frame, (size, size)))
        cap.release()
        clip = np.array(frames)
        total += len(clip)
    return total


def _decode_only(path):
    """Decodes every frame of a video with FFmpeg; returns the count."""
    cap = cv2.VideoCapture(path)
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _decode_packets(path, flag, per_frame=None):
    """Decodes every JPEG packet of an MJPEG video with cv2.imdecode(flag), applying
    `per_frame` to each; returns the count."""
    cap = cv2.VideoCapture(path)
    cap.set(cv2.CAP_PROP_FORMAT, -1)
    n = 0
    while True:
        ok, packet = cap.read()
        if not ok:
            break
        frame = cv2.imdecode(packet, flag)
        if per_frame is not None:
            per_frame(frame)
        n += 1
    cap.release()
    return n


def resize_linear(frame, size):
    """The seed's resize (INTER_LINEAR): cheap, but aliases thin lines when shrinking."""
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    return cv2.resize(frame, (size[1], size[0]))


@contextlib.contextmanager
def patched(module, name, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def count_clips(dataset):
    return sum(int(x.shape[0]) for x, _ in dataset)


class Bench:
    def __init__(self, samples, tfrecords, frames, size):
        self.samples = samples
        self.paths = list(samples.paths)
        self.size = size
        self.workers = os.cpu_count() or 1
        self.pool = concurrent.futures.ThreadPoolExecutor(self.workers)
        self.clip = ClipSpec(frames, (size, size), "uniform")
        self.dataset = make_dataset(samples, self.clip, batch_size=8, training=False)
        self.tfrecord_dataset = make_dataset(tfrecords, self.clip, batch_size=8,
                                             training=False)
        height, width = decode.read_clip(self.paths[0], 1, "first").shape[1:3]
        self.reduction = decode.jpeg_reduction((height, width), (size, size))
        self.mjpeg = decode.jpeg_packets(self.paths[0]) is not None

    def naive(self):
        return naive_loop(self.paths, self.size)

    def read_every_clip(self, dataset):
        n = count_clips(dataset)
        assert n == len(self.paths), (n, len(self.paths))
        return n

    def pipeline(self):
        return self.read_every_clip(self.dataset)

    def tfrecord(self):
        return self.read_every_clip(self.tfrecord_dataset)

    def raw_decode(self):
        return sum(self.pool.map(_decode_only, self.paths))

    def reduced_decode(self, per_frame=None):
        flag = decode._JPEG_FLAGS[self.reduction, False]
        return sum(self.pool.map(lambda p: _decode_packets(p, flag, per_frame),
                                 self.paths))

    def autotuned(self, dataset):
        options = tf.data.Options()
        options.autotune.enabled = True  # outer options win over the pipeline's own
        return lambda: self.read_every_clip(dataset.with_options(options))

    def pipeline_ffmpeg_demux(self):
        with patched(avi, "mjpeg_packets", lambda path: None):
            return self.pipeline()

    def pipeline_full_decode(self):
        with patched(decode, "REDUCED_JPEG", False):
            return self.pipeline()

    def read_clip_pool(self):
        clip = self.clip
        rng = np.random.default_rng(0)

        def one(path):
            return decode.read_clip(path, clip.num_frames, clip.sampling, clip.stride, rng,
                                    clip.size, clip.grayscale).shape[0]

        return sum(self.pool.map(one, self.paths))

    def reduced_decode_resize_rgb(self):
        size = (self.size, self.size)
        return self.reduced_decode(lambda frame: cv2.cvtColor(
            cv2.resize(frame, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))

    def pipeline_linear(self):
        with patched(decode, "resize_frame", resize_linear):
            return self.pipeline()

    def pipeline_cv1(self):
        old = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return self.pipeline()
        finally:
            cv2.setNumThreads(old)

    def pipeline_float32(self):
        if not hasattr(self, "dataset_float32"):
            cut = transforms._cut
            with patched(transforms, "_cut", lambda *a: tf.cast(cut(*a), tf.float32)):
                self.dataset_float32 = make_dataset(self.samples, self.clip, batch_size=8,
                                                    training=False)
        return self.read_every_clip(self.dataset_float32)

    def pipeline_options(self):
        if not hasattr(self, "dataset_opt"):
            options = tf.data.Options()
            options.threading.private_threadpool_size = self.workers
            options.deterministic = False
            self.dataset_opt = self.dataset.with_options(options)
        return count_clips(self.dataset_opt)


def timed(fn):
    """(wall seconds, CPU seconds of this process: all its threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def alternate(runs, repeats, n):
    """Runs each (key, label, fn) of `runs` in turn for 1 + repeats rounds; returns
    {key: [(wall s, CPU s)] of the measured rounds}."""
    results = {key: [] for key, _, _ in runs}
    for round_ in range(repeats + 1):
        for key, _, fn in runs:
            seconds, cpu_seconds = timed(fn)
            if round_ > 0:  # round 0 warms up the page cache, tf.data, OpenCV, tracing
                results[key].append((seconds, cpu_seconds))
            print(f"round {round_} {'(warm-up) ' if round_ == 0 else ''}{key}: "
                  f"{seconds:.2f} s, {n / seconds:.1f} clips/s, "
                  f"{1e3 * cpu_seconds / n:.2f} CPU ms/clip", file=sys.stderr, flush=True)
    return results


def print_table(header, runs, results, row):
    """A markdown table: `header`, then row(key, label, wall seconds of each round)."""
    print()
    print(header)
    for key, label, _ in runs:
        print(row(key, label, [w for w, _ in results[key]]))
    print()


def machine_line(args, what):
    command = "python experiments/bench_input_pipeline.py " + shlex.join(sys.argv[1:])
    return (f"{what}; machine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
            f"{platform.python_version()}, TF {tf.__version__}, OpenCV {cv2.__version__}; "
            f"{datetime.date.today().isoformat()}; `{command.strip()}`")


def write_data(args, workdir, name, num, **options):
    """(Samples, TfrecordSource) of --data or of `num` generated `name` clips, the
    TFRecord copy written by to_tfrecord with its defaults."""
    data = args.data
    if data is None:
        data = os.path.join(workdir, name)
        t = time.perf_counter()
        generate.GENERATORS[name].write(data, num, 0, fmt="video", progress=False,
                                        **options)
        print(f"generated {num} {name} clips in {data} ({time.perf_counter() - t:.1f} s)",
              file=sys.stderr)
    samples = sources.from_spec(data)
    if not isinstance(samples, Samples):
        raise SystemExit("--data must be files on disk, not a TFDS source")
    out = os.path.join(workdir, "tfrecord")
    t = time.perf_counter()
    to_tfrecord.convert(data, out, progress=False)
    print(f"converted to {out} ({time.perf_counter() - t:.1f} s)", file=sys.stderr)
    return samples, sources.from_spec(out)


def throughput(args, workdir):
    samples, tfrecords = write_data(args, workdir, "oscillation", args.num)
    n = len(samples)
    bench = Bench(samples, tfrecords, args.frames, args.size)
    runs = [("a", "naive loop (1 thread: VideoCapture, read all, cv2.resize, np.array)",
             bench.naive),
            ("b", "OpenCV pipeline (make_dataset, uniform, batch 8, training=False)",
             bench.pipeline),
            ("t", "TFRecord pipeline (the same make_dataset on --data=tfrecord:DIR)",
             bench.tfrecord),
            ("c", f"raw decode bound (cap.read() only, {bench.workers} threads)",
             bench.raw_decode)]
    if bench.mjpeg:
        runs.append(("c2", f"reduced decode bound (JPEG packets, imdecode at 1/"
                     f"{bench.reduction}, {bench.workers} threads)", bench.reduced_decode))
        runs.append(("bV", "(b) with every video demuxed by FFmpeg (cv2.VideoCapture), "
                     "not keras_video.data.avi", bench.pipeline_ffmpeg_demux))
    runs.append(("b0", "(b) decoding full size (REDUCED_JPEG = False)",
                 bench.pipeline_full_decode))
    if args.investigate:
        runs += [("bA", "(b) with tf.data's autotuner on", bench.autotuned(bench.dataset)),
                 ("tA", "(t) with tf.data's autotuner on",
                  bench.autotuned(bench.tfrecord_dataset)),
                 ("d", f"decode.read_clip on {bench.workers} threads, no tf.data",
                  bench.read_clip_pool),
                 ("f", "(b) with INTER_LINEAR instead of INTER_AREA", bench.pipeline_linear),
                 ("g", "(b) with cv2.setNumThreads(1)", bench.pipeline_cv1),
                 ("h", "(b) with private_threadpool_size=CPUs, deterministic=False",
                  bench.pipeline_options),
                 ("i", "(b) yielding float32 clips (the pipeline before uint8)",
                  bench.pipeline_float32)]
        if bench.mjpeg:
            runs.append(("e", f"(c2) + INTER_AREA resize + cvtColor, {bench.workers} "
                         "threads", bench.reduced_decode_resize_rgb))

    results = alternate(runs, args.repeats, n)
    rate = {k: n / statistics.median(w for w, _ in r) for k, r in results.items()}
    cpu_ms = {k: 1e3 * statistics.median(c for _, c in r) / n for k, r in results.items()}
    print_table(f"| | method | clips/s (median of {args.repeats}) | min - max | "
                "CPU ms/clip |\n|---|---|---:|---:|---:|", runs, results,
                lambda key, label, walls: f"| {key} | {label} | {rate[key]:.1f} | "
                f"{n / max(walls):.1f} - {n / min(walls):.1f} | {cpu_ms[key]:.2f} |")
    print(f"b/c = {rate['b'] / rate['c']:.2f}, t/c = {rate['t'] / rate['c']:.2f} "
          f"(targets >= 0.9); t/b = {rate['t'] / rate['b']:.2f} (target >= 1); "
          f"b/a = {rate['b'] / rate['a']:.2f}; by CPU work per clip: "
          f"c/b = {cpu_ms['c'] / cpu_ms['b']:.2f}, c/t = {cpu_ms['c'] / cpu_ms['t']:.2f}"
          + (f"; b/c2 = {rate['b'] / rate['c2']:.2f}" if "c2" in rate else "")
          + (f"; b/bV = {rate['b'] / rate['bV']:.2f}" if "bV" in rate else "")
          + f"; b/b0 = {rate['b'] / rate['b0']:.2f}")
    if args.investigate:
        print(f"autotuner off / on: b/bA = {rate['b'] / rate['bA']:.2f}, "
              f"t/tA = {rate['t'] / rate['tA']:.2f}")
        print(", ".join(f"{k}/c = {rate[k] / rate['c']:.2f}" for k in "defghi" if k in rate))
    print()
    source = args.data or "224x224x30 MJPG oscillation .avi"
    print(machine_line(args, f"{n} clips of {source}, clip {args.frames}x{args.size}x"
                       f"{args.size}, JPEG reduction 1/{bench.reduction}"))
    bench.pool.shutdown()


def train_epoch(args, workdir):
    import keras

    from keras_video.models import build_model

    samples, tfrecords = write_data(args, workdir, "motion", args.epoch_clips,
                                    frames=32, size="240x320")
    n, batch = len(samples), 8
    clip = ClipSpec(16, (112, 112), "random", resize=(128, 171), crop="random", flip=True)
    num_classes = len(samples.class_names)
    opencv = make_dataset(samples, clip, batch, training=True, seed=0, drop_remainder=True)
    tfrecord = make_dataset(tfrecords, clip, batch, training=True, seed=0,
                            drop_remainder=True)
    clips, labels = zip(*[(x.numpy(), y.numpy()) for x, y in opencv])
    memory = tf.data.Dataset.from_tensor_slices(
        (np.concatenate(clips), np.concatenate(labels))).batch(batch).prefetch(2)
    steps = n // batch
    print(f"{steps * batch} clips in memory: {np.concatenate(clips).nbytes / 2**20:.0f} MiB",
          file=sys.stderr)
    keras.utils.set_random_seed(0)
    model = build_model("r3d18", input_shape=clip.shape, num_classes=num_classes)
    model.compile(optimizer=keras.optimizers.SGD(1e-3, momentum=0.9),
                  loss="sparse_categorical_crossentropy")

    def epoch(dataset):
        return lambda: model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)

    runs = [("memory", "clips already in memory (the pipeline's uint8 output)",
             epoch(memory)),
            ("opencv", "OpenCV pipeline (make_dataset, training=True)", epoch(opencv)),
            ("tfrecord", "TFRecord pipeline (make_dataset on tfrecord:DIR)",
             epoch(tfrecord))]
    results = alternate(runs, args.repeats, steps * batch)
    seconds = {k: statistics.median(w for w, _ in r) for k, r in results.items()}
    cpu = {k: statistics.median(c for _, c in r) for k, r in results.items()}
    print_table(f"| fed by | s / epoch (median of {args.repeats}) | min - max | "
                "epoch / in-memory epoch | CPU s / epoch | CPU / in-memory CPU |\n"
                "|---|---:|---:|---:|---:|---:|", runs, results,
                lambda key, label, walls: f"| {label} | {seconds[key]:.1f} | "
                f"{min(walls):.1f} - {max(walls):.1f} | "
                f"{seconds[key] / seconds['memory']:.3f} | {cpu[key]:.1f} | "
                f"{cpu[key] / cpu['memory']:.3f} |")
    print("target: epoch / in-memory epoch <= 1.05 for both pipelines")
    print(machine_line(args, f"r3d18 width 1.0, {steps} steps x batch {batch} of "
                       f"{clip.shape}, {num_classes} classes, "
                       f"{args.data or '240x320x32 MJPG motion .avi'}"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=200, help="clips to generate")
    parser.add_argument("--frames", type=int, default=30, help="ClipSpec.num_frames")
    parser.add_argument("--size", type=int, default=64, help="clip height and width")
    parser.add_argument("--repeats", type=int, default=3, help="measured rounds")
    parser.add_argument("--data", default=None,
                        help="existing data (any sources.from_spec layout) instead of "
                        "generated videos")
    parser.add_argument("--investigate", action="store_true",
                        help="also time variants (d)-(h) that split the b..c gap")
    parser.add_argument("--train_epoch", action="store_true",
                        help="time r3d18 training epochs fed by each pipeline instead")
    parser.add_argument("--epoch_clips", type=int, default=96,
                        help="clips per training epoch (--train_epoch)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_input_") as workdir:
        (train_epoch if args.train_epoch else throughput)(args, workdir)


if __name__ == "__main__":
    main()
