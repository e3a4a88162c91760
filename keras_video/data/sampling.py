"""Which frames of a video make a clip.

Modes:
  first    frames 0 .. N-1;
  uniform  N frames spread evenly over the whole video (the centre of N equal segments);
  random   a random temporal crop: N frames `stride` apart from a random start.
  center   the same crop as `random`, taken from the middle (deterministic evaluation).
A video shorter than the clip is looped: indices wrap around (0, 1, .., T-1, 0, 1, ..),
as mmaction2's SampleFrames does with `out_of_bound_opt='loop'`.

`video_clips` cuts a whole video into its non-overlapping clips for the video-level
evaluation protocol.
"""

import numpy as np

MODES = ("first", "uniform", "random", "center")


def frame_indices(total, num_frames, mode="uniform", stride=1, rng=None):
    """int64 indices [num_frames] into a video of `total` frames."""
    if total <= 0:
        raise ValueError("a video with no frames has no clip")
    if mode not in MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; expected one of {MODES}")
    if mode == "uniform":
        if total >= num_frames:
            return ((np.arange(num_frames) + 0.5) * total / num_frames).astype(np.int64)
        return np.arange(num_frames, dtype=np.int64) % total
    span = (num_frames - 1) * stride + 1
    if mode == "first" or span > total:
        start = 0
    elif mode == "center":
        start = (total - span) // 2
    else:
        rng = rng if rng is not None else np.random.default_rng()
        start = int(rng.integers(0, total - span + 1))
    return (start + np.arange(num_frames, dtype=np.int64) * stride) % total


def video_clips(total, num_frames, stride=1):
    """int64 indices [K, num_frames]: every non-overlapping clip of a video.

    As 3D-ResNets-PyTorch's SlidingWindow after TemporalSubsampling(stride): clip k
    takes the kept frames k*N .. k*N + N-1 (kept frames are `stride` apart), so
    K = ceil(ceil(total / stride) / N); the last, partial clip loops its own frames,
    and a video shorter than one clip gives one looped clip.
    """
    if total <= 0:
        raise ValueError("a video with no frames has no clip")
    kept = np.arange(0, total, stride, dtype=np.int64)
    clips = []
    for start in range(0, len(kept), num_frames):
        window = kept[start:start + num_frames]
        clips.append(window[np.arange(num_frames) % len(window)])
    return np.stack(clips)
