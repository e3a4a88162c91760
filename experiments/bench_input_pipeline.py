"""Input-pipeline throughput: the seed's naive loop vs our tf.data pipeline vs raw decode.

    python experiments/bench_input_pipeline.py [--num 200] [--frames 30] [--size 64]
        [--repeats 3] [--data DIR] [--investigate]

By default it writes `--num` oscillation clips (224x224, 30 frames, MJPG .avi, the
`generate --format video` layout) to a temporary folder; `--data` takes instead any
layout `keras_video.data.sources.from_spec` accepts. On the SAME files it measures
clips per second of:

  (a) naive: the Keras TimeDistributed seed's loop: one Python thread, for each video
      `cv2.VideoCapture` reading every frame into a list, `cv2.resize` of each frame to
      --size, `np.array`;
  (b) pipeline: `make_dataset(samples, ClipSpec(frames, (size, size), "uniform"),
      batch_size=8, training=False)` iterated to the end (no cache: every epoch decodes);
  (c) raw decode bound: OpenCV decode alone on all cores: a ThreadPoolExecutor of
      `os.cpu_count()` threads (cv2 releases the GIL), each task opening one video and
      `cap.read()`ing every frame, counting them; no resize, colour conversion or copy.

The three are alternated (a, b, c, a, b, c, ...) for --repeats rounds after one warm-up
round each, so that load from other processes hits all of them alike; the medians and
the ratios b/c and b/a are printed as a markdown table.

--investigate adds, in the same alternation, variants that split the gap b..c:
  (d) `decode.read_clip` (the pipeline's per-clip work: decode + INTER_AREA resize +
      BGR->RGB + stack) on the same thread pool, without tf.data;
  (e) (c) plus `cv2.resize(INTER_AREA)` + `cvtColor` per frame, no Python bookkeeping;
  (f) (b) with `decode._resize` swapped for a plain `cv2.resize` (INTER_LINEAR, the
      seed's, which aliases thin lines): the pipeline without the anti-aliasing cost;
  (g) (b) with `cv2.setNumThreads(1)` (OpenCV's parallel_for inside resize/cvtColor
      no longer competing with tf.data's threads);
  (h) (b) with `threading.private_threadpool_size = CPUs` and `deterministic=False`;
  (i) (b) with `resize_area_halving`: exact 2x INTER_AREA halvings (OpenCV's fast
      integer path) while the frame is >= 2x the target, then INTER_AREA for the rest.
The CPU ms/clip column (CPU time of the whole process, all threads, per clip) is the
work each method does; it is far less sensitive than clips/s to other processes.
"""

import argparse
import concurrent.futures
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from keras_video.data import decode, generate, sources  # noqa: E402
from keras_video.data.pipeline import ClipSpec, make_dataset  # noqa: E402


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


def _decode_frames(path, per_frame=None):
    """Decodes every frame of a video, applying `per_frame` to each; returns the count."""
    cap = cv2.VideoCapture(path)
    n = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if per_frame is not None:
            per_frame(frame)
        n += 1
    cap.release()
    return n


def _decode_only(path):
    return _decode_frames(path)


def _decode_resize_rgb(path, size):
    return _decode_frames(path, lambda frame: cv2.cvtColor(
        cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))


_REAL_RESIZE = decode._resize  # INTER_AREA when shrinking; the variants patch decode._resize


def resize_linear(frame, size):
    """The seed's resize (INTER_LINEAR): cheap, but aliases thin lines when shrinking."""
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    return cv2.resize(frame, (size[1], size[0]))


def resize_area_halving(frame, size):
    """INTER_AREA in two steps: exact 2x halvings (OpenCV's fast integer-scale path)
    while the frame is at least twice the target, then INTER_AREA for the rest. Still
    a box filter (no aliasing), not bit-identical to one INTER_AREA call."""
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    h, w = size
    while (frame.shape[0] >= 2 * h and frame.shape[1] >= 2 * w
           and frame.shape[0] % 2 == 0 and frame.shape[1] % 2 == 0):
        frame = cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2),
                           interpolation=cv2.INTER_AREA)
    return _REAL_RESIZE(frame, size)


class Bench:
    def __init__(self, samples, frames, size):
        self.samples = samples
        self.paths = list(samples.paths)
        self.frames = frames
        self.size = size
        self.workers = os.cpu_count() or 1
        self.pool = concurrent.futures.ThreadPoolExecutor(self.workers)
        self.clip = ClipSpec(frames, (size, size), "uniform")
        self.dataset = make_dataset(samples, self.clip, batch_size=8, training=False)
        # (b') the same pipeline at the videos' own size: no CPU resize, as when the
        # resize is left to the accelerator; it isolates what tf.data itself costs.
        height, width = decode.read_clip(self.paths[0], 1, "first").shape[1:3]
        self.native_dataset = make_dataset(
            samples, ClipSpec(frames, (height, width), "uniform"), batch_size=8,
            training=False)

    def naive(self):
        return naive_loop(self.paths, self.size)

    def pipeline(self):
        n = 0
        for x, _ in self.dataset:
            n += int(x.shape[0])
        assert n == len(self.paths), (n, len(self.paths))
        return n

    def pipeline_native(self):
        return sum(int(x.shape[0]) for x, _ in self.native_dataset)

    def raw_decode(self):
        return sum(self.pool.map(_decode_only, self.paths))

    def read_clip_pool(self):
        clip = self.clip
        rng = np.random.default_rng(0)

        def one(path):
            return decode.read_clip(path, clip.num_frames, clip.sampling, clip.stride, rng,
                                    clip.size, clip.grayscale).shape[0]

        return sum(self.pool.map(one, self.paths))

    def decode_resize_rgb(self):
        return sum(self.pool.map(lambda p: _decode_resize_rgb(p, self.size), self.paths))

    def _pipeline_with_resize(self, resize):
        real = decode._resize
        decode._resize = resize
        try:
            return self.pipeline()
        finally:
            decode._resize = real

    def pipeline_linear(self):
        return self._pipeline_with_resize(resize_linear)

    def pipeline_area2(self):
        return self._pipeline_with_resize(resize_area_halving)

    def pipeline_cv1(self):
        old = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            return self.pipeline()
        finally:
            cv2.setNumThreads(old)

    def pipeline_options(self):
        if not hasattr(self, "dataset_opt"):
            options = tf.data.Options()
            options.threading.private_threadpool_size = self.workers
            options.deterministic = False
            self.dataset_opt = self.dataset.with_options(options)
        n = 0
        for x, _ in self.dataset_opt:
            n += int(x.shape[0])
        return n


def timed(fn):
    """(wall seconds, CPU seconds of this process: all its threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=200, help="clips to generate")
    parser.add_argument("--frames", type=int, default=30, help="ClipSpec.num_frames")
    parser.add_argument("--size", type=int, default=64, help="clip height and width")
    parser.add_argument("--repeats", type=int, default=3, help="measured rounds")
    parser.add_argument("--data", default=None,
                        help="existing data (any sources.from_spec layout) instead of "
                        "generating --num oscillation videos")
    parser.add_argument("--investigate", action="store_true",
                        help="also time variants (d)-(f) that split the b..c gap")
    args = parser.parse_args()

    tmp = None
    if args.data is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_input_")
        data = os.path.join(tmp.name, "oscillation")
        t = time.perf_counter()
        generate.write_oscillation(data, args.num, seed=0, fmt="video", progress=False)
        print(f"generated {args.num} clips in {data} ({time.perf_counter() - t:.1f} s)",
              file=sys.stderr)
    else:
        data = args.data
    samples = sources.from_spec(data)
    if not isinstance(samples, sources.Samples):
        raise SystemExit("--data must be files on disk, not a TFDS source")
    n = len(samples)
    bench = Bench(samples, args.frames, args.size)

    runs = [("a", "naive loop (1 thread: VideoCapture, read all, cv2.resize, np.array)",
             bench.naive),
            ("b", "our pipeline (make_dataset, uniform, batch 8, training=False)",
             bench.pipeline),
            ("c", f"raw decode bound (cap.read() only, {bench.workers} threads)",
             bench.raw_decode),
            ("b'", "our pipeline at the videos' own size (no CPU resize)",
             bench.pipeline_native)]
    if args.investigate:
        runs += [("d", f"decode.read_clip on {bench.workers} threads, no tf.data",
                  bench.read_clip_pool),
                 ("e", f"cap.read + INTER_AREA resize + cvtColor, {bench.workers} threads",
                  bench.decode_resize_rgb),
                 ("f", "(b) with INTER_LINEAR instead of INTER_AREA", bench.pipeline_linear),
                 ("i", "(b) with 2x INTER_AREA halvings, then INTER_AREA",
                  bench.pipeline_area2),
                 ("g", "(b) with cv2.setNumThreads(1)", bench.pipeline_cv1),
                 ("h", "(b) with private_threadpool_size=CPUs, deterministic=False",
                  bench.pipeline_options)]

    times = {key: [] for key, _, _ in runs}
    cpu = {key: [] for key, _, _ in runs}
    for round_ in range(args.repeats + 1):
        for key, _, fn in runs:
            seconds, cpu_seconds = timed(fn)
            if round_ > 0:  # round 0 warms up the page cache, tf.data and OpenCV
                times[key].append(seconds)
                cpu[key].append(cpu_seconds)
            print(f"round {round_} {'(warm-up) ' if round_ == 0 else ''}{key}: "
                  f"{n / seconds:.1f} clips/s, {1e3 * cpu_seconds / n:.2f} CPU ms/clip",
                  file=sys.stderr)

    rate = {key: n / statistics.median(ts) for key, ts in times.items()}
    spread = {key: (n / max(ts), n / min(ts)) for key, ts in times.items()}
    print()
    print(f"| | method | clips/s (median of {args.repeats}) | min - max | CPU ms/clip |")
    print("|---|---|---:|---:|---:|")
    for key, label, _ in runs:
        lo, hi = spread[key]
        cpu_ms = 1e3 * statistics.median(cpu[key]) / n
        print(f"| {key} | {label} | {rate[key]:.1f} | {lo:.1f} - {hi:.1f} | {cpu_ms:.2f} |")
    print()
    cpu_ms = {key: 1e3 * statistics.median(v) / n for key, v in cpu.items()}
    native_over_bound = rate["b'"] / rate["c"]
    print(f"b/c = {rate['b'] / rate['c']:.2f} (target >= 0.9), "
          f"b/a = {rate['b'] / rate['a']:.2f}; by CPU work per clip: "
          f"c/b = {cpu_ms['c'] / cpu_ms['b']:.2f}, a/b = {cpu_ms['a'] / cpu_ms['b']:.2f}; "
          f"b'/c = {native_over_bound:.2f}")
    if args.investigate:
        print(", ".join(f"{k}/c = {rate[k] / rate['c']:.2f}" for k in "defghi")
              + f"; b/d = {rate['b'] / rate['d']:.2f}, f/b = {rate['f'] / rate['b']:.2f}")
    command = "python experiments/bench_input_pipeline.py " + shlex.join(sys.argv[1:])
    print()
    print(f"{n} clips of {data if args.data else '224x224x30 MJPG oscillation .avi'}, "
          f"clip {args.frames}x{args.size}x{args.size}; machine: {os.cpu_count()} CPUs, "
          f"{platform.platform()}, Python {platform.python_version()}, TF {tf.__version__}, "
          f"OpenCV {cv2.__version__}; {datetime.date.today().isoformat()}; "
          f"`{command.strip()}`")
    bench.pool.shutdown()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
