"""Reading a random clip from a long video: decode from the start vs seek to the key frame
before it, with OpenCV and with PyAV, for frame accuracy and clips per second.

    python experiments/bench_sparse_decode.py [--seconds 3] [--rounds 3]
        [--positions 100] [--minutes 10] [--cache DIR] [--fresh]

Test videos, written once with PyAV into --cache (default: keras_video_sparse_decode
in the temporary folder; --fresh writes them again), a camera panning over a textured
scene with a moving disc and a little noise, 320x240 at 25 fps:

  h264_k250_300f.mp4   H.264 (libx264, its defaults: key frame every <= 250 frames,
                       3 B-frames), 300 frames;
  h264_k25_300f.mp4    the same with keyint=25;
  h264_k25_300f.ts     the same in MPEG-TS (broadcast and camera files);
  mpeg4_300f.avi       MPEG-4 part 2 in AVI (FFmpeg's encoder, GOP 12, 2 B-frames:
                       what UCF101's Xvid files are);
  vp9_300f.webm        VP9 (libvpx-vp9, a key frame every <= 125 frames: with the
                       encoder's defaults here it writes one only at the start);
  h264_k250_<N>f.mp4   H.264 as the first, --minutes long (N = 15000 frames, 10 min,
                       by default).

Accuracy: --positions random frame indices per file (the same for every method); the
true frames are those OpenCV gives decoding the file from the start (what
keras_video.data.decode reads, and the reference of every test). Per method: how many
positions gave a frame other than the true one, and the largest absolute pixel
difference found there.

  (b) opencv-seek  `cap.set(cv2.CAP_PROP_POS_FRAMES, k)` then `cap.read()` (one capture
                   for all positions, visited in random order);
  (c) pyav-seek    `container.seek(pts(k), backward=True, any_frame=False,
                   stream=stream)` then decode forward to the frame whose pts maps to
                   k, pts(k) = start_time + k / (average_rate * time_base): the plain
                   recipe, each position in a fresh container;
  (d) keras_video  `decode.read_frames(path, [k])`: (c) with the checks of
                   keras_video.data.decode (first frame's pts as the origin, every
                   decoded frame on the constant-rate grid, a look-up of the key frame
                   before B-frame reordering), falling back to OpenCV from the start.

Speed: random crops of 16 frames, stride 1 and 2 (the same crops for every method),
each a fresh open of the file, as a training input pipeline reads them; the methods
alternated over --rounds rounds, --seconds per method and cell in all (at least one clip
a round). Clips per second (wall clock) and CPU milliseconds per clip (process time,
every thread: OpenCV decodes with frame threads, PyAV with its default, slice threads
only; on a machine
shared with other work the CPU time is the steadier number, and what bounds a pipeline
that decodes clips in parallel), and their ratios to (a):

  (a) decode-all   `decode.read_frames(path, crop)` with `decode.SEEK = False`: OpenCV
                   decodes every frame up to the clip's last (`read_video` before
                   seeking);
  (b), (c), (d)    as above, for the crop's frames ((b) grab()s the frames a stride-2
                   crop skips without retrieve(); (c) and (d) convert the frames they
                   keep with one reused swscale context on one thread); every method
                   returns the clip as one RGB uint8 array;
  (e) keras_video+ft (d) with `decode.SEEK_FRAME_THREADS = True`: PyAV decodes with
                   frame threads as well, as OpenCV does.

Timeline: `decode.iter_video_windows` over the long file, 16-frame windows every 16,
125, 250 and 1000 frames: windows, frames decoded, seeks, seconds.

keras_video.data.decode remembers per file what the first read learnt (the first frame's
pts, the index checked), so (d)'s speed is that of the second and later reads of a file
(an epoch after the first); a first read decodes frame 0 and scans the index once more.

Prints the CPU model (lscpu), the library versions, the files (size, frames, key frames
counted from the packets) and three markdown tables. Default run: about 3 minutes on 2
cores, plus about 70 s the first time to encode the long file.
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from keras_video.data import decode  # noqa: E402

SIZE = (240, 320)
FPS = 25


def cpu_name():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or "unknown"


def scene_frames(n, seed=0):
    """n RGB frames [240, 320, 3]: a camera panning over a textured scene (smooth noise
    at three scales, rectangles), a moving disc, and a little per-frame noise."""
    rng = np.random.default_rng(seed)
    h, w = SIZE
    big_h, big_w = 3 * h, 3 * w
    world = np.zeros((big_h, big_w, 3), np.float32)
    for scale, weight in ((8, 0.5), (32, 0.3), (96, 0.2)):
        small = rng.random((big_h // scale + 1, big_w // scale + 1, 3)).astype(np.float32)
        world += weight * cv2.resize(small, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
    world = np.clip(world * 255, 0, 255)
    for _ in range(60):
        y, x = rng.integers(0, big_h - 40), rng.integers(0, big_w - 40)
        dy, dx = rng.integers(8, 40, 2)
        world[y:y + dy, x:x + dx] = rng.integers(0, 256, 3)
    world = world.astype(np.uint8)
    noise = rng.integers(-4, 5, (16, h, w, 3)).astype(np.int16)
    for t in range(n):
        y = int((big_h - h) / 2 * (1 + np.sin(2 * np.pi * t / 290)))
        x = int((big_w - w) / 2 * (1 + np.sin(2 * np.pi * t / 400)))
        frame = world[y:y + h, x:x + w].astype(np.int16) + noise[t % 16]
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        cy = int(h / 2 + h / 3 * np.sin(t / 9)), int(w / 2 + w / 3 * np.cos(t / 13))
        cv2.circle(frame, cy[::-1], 18, (250, 40, 40), -1)
        yield frame


def write_video(path, n, codec, options=None, container_options=None):
    import av

    tmp = path + ".part" + os.path.splitext(path)[1]
    with av.open(tmp, "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=FPS, options=options or {})
        stream.height, stream.width = SIZE
        stream.pix_fmt = "yuv420p"
        for frame in scene_frames(n):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    os.replace(tmp, path)


def make_files(cache, minutes, fresh):
    os.makedirs(cache, exist_ok=True)
    long_frames = int(round(minutes * 60 * FPS))
    specs = [
        ("h264_k250_300f.mp4", 300, "libx264", {}),
        ("h264_k25_300f.mp4", 300, "libx264", {"x264-params": "keyint=25"}),
        ("mpeg4_300f.avi", 300, "mpeg4", {"g": "12", "bf": "2", "b": "1000000"}),
        ("h264_k25_300f.ts", 300, "libx264", {"x264-params": "keyint=25"}),
        ("vp9_300f.webm", 300, "libvpx-vp9",
         {"g": "125", "deadline": "realtime", "cpu-used": "8"}),
        (f"h264_k250_{long_frames}f.mp4", long_frames, "libx264", {}),
    ]
    paths = {}
    for name, n, codec, options in specs:
        path = os.path.join(cache, name)
        if fresh or not os.path.exists(path):
            t = time.perf_counter()
            write_video(path, n, codec, options)
            print(f"wrote {name} in {time.perf_counter() - t:.0f} s", flush=True)
        paths[name] = path
    return paths


def describe(path):
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        codec = s.codec_context.name
        has_b = s.codec_context.has_b_frames
        keys = [i for i, p in enumerate(p for p in c.demux(s) if p.size) if p.is_keyframe]
    cap = cv2.VideoCapture(path)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    gaps = np.diff(keys) if len(keys) > 1 else np.array([n])
    return dict(codec=codec, frames=n, mb=os.path.getsize(path) / 2**20, keys=len(keys),
                gap=f"{int(gaps.min())}-{int(gaps.max())}" if len(keys) > 1 else "-",
                reorder=has_b)


# ---- the true frames --------------------------------------------------------------

def true_frames(path, positions):
    """{k: BGR frame} for the positions, OpenCV decoding from the start."""
    wanted, out = set(positions), {}
    cap = cv2.VideoCapture(path)
    i, last = 0, max(positions)
    while i <= last and cap.grab():
        if i in wanted:
            out[i] = cap.retrieve()[1]
        i += 1
    cap.release()
    return out


def frame_diff(a, b):
    if a is None or b is None or a.shape != b.shape:
        return 255
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


# ---- the methods: one frame ------------------------------------------------------

def opencv_seek_frames(path, positions):
    cap = cv2.VideoCapture(path)
    out = {}
    for k in positions:
        cap.set(cv2.CAP_PROP_POS_FRAMES, k)
        ok, frame = cap.read()
        out[k] = frame if ok else None
    cap.release()
    return out


def _pyav_plain(path, wanted):
    """The plain PyAV recipe: seek to pts(first wanted), decode forward, keep the
    frames whose pts map to wanted indices. {index: BGR frame}."""
    import av
    from av.video.reformatter import VideoReformatter

    out, to_bgr = {}, VideoReformatter()
    with av.open(path) as c:
        s = c.streams.video[0]
        step = 1 / (s.average_rate * s.time_base)
        origin = s.start_time or 0
        c.seek(int(origin + round(wanted[0] * step)), backward=True, any_frame=False,
               stream=s)
        want, last = set(wanted), wanted[-1]
        for frame in c.decode(s):
            i = int(round((frame.pts - origin) / step))
            if i in want:
                out[i] = to_bgr.reformat(frame, format="bgr24", interpolation="BICUBIC",
                                         threads=1).to_ndarray()
            if i >= last:
                break
    return out


def pyav_seek_frames(path, positions):
    return {k: _pyav_plain(path, [k]).get(k) for k in positions}


def keras_video_frames(path, positions):
    out = {}
    for k in positions:
        out[k] = cv2.cvtColor(decode.read_frames(path, [k])[0], cv2.COLOR_RGB2BGR)
    return out


ACCURACY = {"opencv-seek": opencv_seek_frames, "pyav-seek": pyav_seek_frames,
            "keras_video": keras_video_frames}


# ---- the methods: one random crop ------------------------------------------------

def crop_decode_all(path, start, n, stride):
    decode.SEEK = False
    try:
        return decode.read_frames(path, start + np.arange(n) * stride)
    finally:
        decode.SEEK = True


def crop_opencv_seek(path, start, n, stride):
    cap = cv2.VideoCapture(path)
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    for k in range((n - 1) * stride + 1):
        if not cap.grab():
            break
        if k % stride == 0:
            frames.append(cv2.cvtColor(cap.retrieve()[1], cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames)  # the clip, RGB, as the other methods give it


def crop_pyav_seek(path, start, n, stride):
    wanted = list(start + np.arange(n) * stride)
    got = _pyav_plain(path, wanted)
    return np.stack([cv2.cvtColor(got[i], cv2.COLOR_BGR2RGB) for i in wanted])


def crop_keras_video(path, start, n, stride):
    return decode.read_frames(path, start + np.arange(n) * stride)


def crop_keras_video_frame_threads(path, start, n, stride):
    decode.SEEK_FRAME_THREADS = True
    try:
        return decode.read_frames(path, start + np.arange(n) * stride)
    finally:
        decode.SEEK_FRAME_THREADS = False


SPEED = {"decode-all": crop_decode_all, "opencv-seek": crop_opencv_seek,
         "pyav-seek": crop_pyav_seek, "keras_video": crop_keras_video,
         "keras_video+ft": crop_keras_video_frame_threads}


def measure(path, starts, stride, seconds, rounds):
    """{method: (clips/s, CPU ms per clip, clips)}: the methods alternated for `rounds`
    rounds of seconds / rounds each (at least one clip), each on its own run through
    the same crops."""
    done = {m: 0 for m in SPEED}
    wall = {m: 0.0 for m in SPEED}
    cpu = {m: 0.0 for m in SPEED}
    for _ in range(rounds):
        for method, fn in SPEED.items():
            t0, c0 = time.perf_counter(), time.process_time()
            while True:
                fn(path, int(starts[done[method]]), 16, stride)
                done[method] += 1
                if time.perf_counter() - t0 >= seconds / rounds:
                    break
            wall[method] += time.perf_counter() - t0
            cpu[method] += time.process_time() - c0
    return {m: (done[m] / wall[m], 1e3 * cpu[m] / done[m], done[m]) for m in SPEED}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="per method and speed cell")
    ap.add_argument("--rounds", type=int, default=3, help="alternations per speed cell")
    ap.add_argument("--positions", type=int, default=100, help="per file, for accuracy")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the long file")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(),
                                                    "keras_video_sparse_decode"))
    ap.add_argument("--fresh", action="store_true", help="write the test videos again")
    args = ap.parse_args()

    import av

    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical CPUs visible)")
    libavcodec = ".".join(map(str, av.library_versions["libavcodec"]))
    print(f"Python {platform.python_version()}, OpenCV {cv2.__version__}, PyAV "
          f"{av.__version__} (libavcodec {libavcodec}), numpy {np.__version__}")
    paths = make_files(args.cache, args.minutes, args.fresh)
    names = list(paths)
    long_name = names[-1]

    print("\n| file | codec | frames | MB | key frames | key-frame gap | reorder delay |")
    print("|---|---|---|---|---|---|---|")
    info = {}
    for name in names:
        d = info[name] = describe(paths[name])
        print(f"| {name} | {d['codec']} | {d['frames']} | {d['mb']:.2f} | {d['keys']} | "
              f"{d['gap']} | {d['reorder']} |")

    rng = np.random.default_rng(0)
    exact = {}
    print(f"\nAccuracy over {args.positions} random positions per file "
          "(wrong: frames not the one decoding from the start gives)\n")
    print("| method | file | exact? | wrong / positions | max abs diff | s |")
    print("|---|---|---|---|---|---|")
    for name in names:
        path = paths[name]
        positions = [int(k) for k in rng.permutation(info[name]["frames"])[:args.positions]]
        truth = true_frames(path, positions)
        for method, fn in ACCURACY.items():
            t = time.perf_counter()
            got = fn(path, positions)
            seconds = time.perf_counter() - t
            diffs = [frame_diff(got.get(k), truth[k]) for k in positions]
            wrong = sum(d > 0 for d in diffs)
            exact[method, name] = wrong == 0
            print(f"| {method} | {name} | {'yes' if wrong == 0 else 'NO'} | "
                  f"{wrong} / {len(positions)} | {max(diffs)} | {seconds:.1f} |",
                  flush=True)

    print(f"\nSpeed: random 16-frame crops, each clip a fresh open of the file, the "
          f"methods alternated over {args.rounds} rounds ({args.seconds:g} s per method "
          "and cell in all); CPU ms/clip counts every thread of the process\n")
    print("| method | file | stride | exact? | clips/s | CPU ms/clip | clips "
          "| ratio to decode-all (clips/s, CPU) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in ("h264_k250_300f.mp4", "h264_k25_300f.mp4", long_name):
        path, total = paths[name], info[name]["frames"]
        for stride in (1, 2):
            span = 15 * stride + 1
            starts = np.random.default_rng(stride).integers(0, total - span + 1, 100000)
            result = measure(path, starts, stride, args.seconds, args.rounds)
            base_rate, base_cpu, _ = result["decode-all"]
            for method, (rate, cpu, done) in result.items():
                ok = exact.get((method.split("+")[0], name), True)
                print(f"| {method} | {name} | {stride} | {'yes' if ok else 'NO'} | "
                      f"{rate:.2f} | {cpu:.1f} | {done} | {rate / base_rate:.1f}x, "
                      f"{base_cpu / cpu:.1f}x |", flush=True)
    print(f"\nTimeline over {long_name}: `decode.iter_video_windows(path, 16, stride)`, "
          "every window read, full size\n")
    print("| stride | windows | frames decoded | seeks | s | windows/s |")
    print("|---|---|---|---|---|---|")
    for stride in (16, 125, 250, 1000):
        stats = decode.DecodeStats()
        t = time.perf_counter()
        windows = sum(1 for _ in decode.iter_video_windows(paths[long_name], 16, stride,
                                                           stats=stats))
        seconds = time.perf_counter() - t
        print(f"| {stride} | {windows} | {stats.decoded} | {stats.seeks} | "
              f"{seconds:.1f} | {windows / seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
