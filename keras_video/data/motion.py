"""The motion benchmark: classes that no single frame can tell apart.

    python -m keras_video.data.generate motion --out DIR --num N --seed S \
        [--frames 32] [--size 64]

Eight classes, each one kind of motion of one shape over a still textured background:

    move_left, move_right, move_up, move_down   translation (screen directions)
    rotate_cw, rotate_ccw                       rotation (clockwise as seen on screen)
    grow, shrink                                scaling about the shape's centre

The shape is a circle, triangle, square, star or cross of a random colour, with a small
disc of black or white (whichever contrasts more) drawn off-centre on it, so that the
rotation of every shape, the circle and the symmetric polygons included, is visible
and has a direction. The background is one of three textures (smooth two-colour noise,
stripes at a random angle, a checkerboard) in two random colours; it never moves, so
all motion in a clip is the class's motion. Clip k's class is entry k of a sequence
of seeded permutations of the classes: any K consecutive clips hold every class once.

Why a single frame is uninformative. The space is a torus: the shape wraps around
the frame edges, and its centre at the first frame is uniform over the frame, so its
position in every frame is uniform for every class. Its angle is uniform for every
class for the same reason (uniform start angle). Its size is drawn so that a random
frame of any clip has the same size distribution: a grow / shrink clip has log-radius
m + g (t - (T - 1) / 2) with m uniform (in a range that keeps every frame inside the
radius bounds) and rate g uniform; a clip of the other classes keeps one radius, drawn
as m + g (tau - (T - 1) / 2) for a uniform frame index tau. Shape, colours and texture
are drawn the same way for every class. So the distribution of a frame drawn at a
random index is identical for all classes; only at a known frame index do grow and
shrink differ (small shapes are more frequent early in grow clips and late in shrink
clips), and that only in size. What tells the classes apart is how frames change.

Speeds (at the default 64 x 64; positions and radii scale with the frame size):
translation 2 - 5 px per frame (32 - 80 px in 16 frames), rotation 8 - 20 degrees
per frame, scaling 2.4 - 3.9 % of the radius per frame (x 1.4 - 1.8 in 16 frames; the
upper end is the cap that keeps a 32-frame grow clip inside the radius bounds);
radii 7 - 32 % of the shorter frame side. At half these speeds (and 2000 videos of
64 x 64) every model stayed at chance on held-out videos for 1000 steps, and a tiny 3D
CNN sat at loss ln 8 for hundreds of steps; at these speeds it left that plateau after
~150 steps, and r3d18 after ~300 (experiments/RESULTS.md, motion benchmark). The
defaults (32 frames of 64 x 64 at 15 fps) give two non-overlapping 16-frame clips per
video.

Output (`--format video`, the default): one MJPG `.avi` per clip and `labels.csv` with
rows `path,label`, the label being the class name, which `keras_video.data.sources`
reads as a classification set (classes ordered by name). `--format frames` writes
`<class>/clip_NNNNN/o (1).jpg ...` (class sub-folders of frame folders).
"""

import dataclasses
import math

import cv2
import numpy as np

CLASSES = ("move_left", "move_right", "move_up", "move_down", "rotate_cw", "rotate_ccw",
           "grow", "shrink")
SHAPES = ("circle", "triangle", "square", "star", "cross")
TEXTURES = ("noise", "stripes", "checkerboard")

# Sub-pixel vertex precision for cv2.fillPoly: coordinates are passed times 2**_SHIFT.
_SHIFT = 4
# Masks are drawn this many times larger and area-averaged down: cv2's own
# anti-aliasing misjudges the area of a small shape by up to ~15 % as it turns, which
# would look like growing or shrinking.
_SUPERSAMPLE = 4
# Colours closer than this (RGB distance) to the background would hide the shape.
_MIN_CONTRAST = 90.0


@dataclasses.dataclass(frozen=True)
class MotionSpec:
    height: int = 64
    width: int = 64
    num_frames: int = 32
    fps: float = 15.0
    speed: tuple = (2.0, 5.0)  # translation, px per frame at a 64 px shorter side
    spin: tuple = (8.0, 20.0)  # rotation, degrees per frame
    growth: tuple = (0.024, 0.05)  # d log(radius) per frame (capped: growth_range)
    radius: tuple = (0.07, 0.32)  # bounds of the radius in any frame, x shorter side

    def __post_init__(self):
        if self.num_frames < 2:
            raise ValueError(f"motion needs at least 2 frames, got {self.num_frames}")
        if min(self.height, self.width) < 16:
            raise ValueError(f"motion frames must be at least 16 x 16, got "
                             f"{self.height} x {self.width}")

    @property
    def scale(self):
        return min(self.height, self.width) / 64.0

    def growth_range(self):
        """The rate range, capped for long clips: a grow clip's radii must fit in the
        bounds with room left for a random middle radius (20 % of the log range)."""
        log_range = math.log(self.radius[1] / self.radius[0])
        hi = min(self.growth[1], 0.8 * log_range / (self.num_frames - 1))
        return min(self.growth[0], hi), hi


def _unit_shape(name):
    """Vertices [N, 2] of a shape of radius 1 at angle 0; vertex / arm 0 points to +x."""
    if name == "circle":
        a = np.linspace(0.0, 2.0 * math.pi, 48, endpoint=False)
        return np.stack([np.cos(a), np.sin(a)], -1)
    if name in ("triangle", "square"):
        a = np.linspace(0.0, 2.0 * math.pi, 3 if name == "triangle" else 4, endpoint=False)
        return np.stack([np.cos(a), np.sin(a)], -1)
    if name == "star":
        a = np.linspace(0.0, 2.0 * math.pi, 10, endpoint=False)
        rho = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        return np.stack([rho * np.cos(a), rho * np.sin(a)], -1)
    if name == "cross":
        w = 0.3
        return np.array([(1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w),
                         (-w, -w), (-w, -1), (w, -1), (w, -w), (1, -w)], np.float64)
    raise ValueError(f"unknown shape {name!r}")


def _two_colours(rng):
    return rng.uniform(0, 255, size=(2, 3))


def texture(kind, colours, rng, height, width):
    """A still background [H, W, 3] float64: a blend of the two `colours`."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    if kind == "noise":
        cell = rng.uniform(3.0, 8.0)
        coarse = rng.uniform(0.0, 1.0, size=(int(height / cell) + 2, int(width / cell) + 2))
        weight = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        weight = np.clip(weight, 0.0, 1.0)
    elif kind == "stripes":
        angle = rng.uniform(0.0, math.pi)
        period = rng.uniform(5.0, 16.0)
        phase = rng.uniform(0.0, 2.0 * math.pi)
        u = x * math.cos(angle) + y * math.sin(angle)
        # A steep sine rather than a step: edges 1-2 px wide, no aliasing.
        weight = np.clip(0.5 + 2.0 * np.sin(2.0 * math.pi * u / period + phase), 0.0, 1.0)
    elif kind == "checkerboard":
        cell = rng.uniform(4.0, 12.0)
        ox, oy = rng.uniform(0.0, 2.0 * cell, size=2)
        # The sign of sin * sin is a checkerboard; steep rather than a step, like the
        # stripes (hard saturated edges also cost MJPEG twice the error).
        wave = np.sin(math.pi * (x + ox) / cell) * np.sin(math.pi * (y + oy) / cell)
        weight = np.clip(0.5 + 4.0 * wave, 0.0, 1.0)
    else:
        raise ValueError(f"unknown texture {kind!r}")
    return colours[0] + weight[..., None] * (colours[1] - colours[0])


def _distance_to_segment(c, a, b):
    """RGB distance from colour c to the nearest blend of colours a and b."""
    ab = b - a
    t = np.clip(np.dot(c - a, ab) / max(np.dot(ab, ab), 1e-9), 0.0, 1.0)
    return float(np.linalg.norm(c - (a + t * ab)))


def sample_params(label, rng, spec=MotionSpec()):
    """Everything that defines one clip of class index `label`, drawn from `rng`."""
    name = CLASSES[label]
    t_mid = (spec.num_frames - 1) / 2.0
    short = min(spec.height, spec.width)
    r_lo, r_hi = np.log(np.array(spec.radius) * short)
    g = rng.uniform(*spec.growth_range())
    m = rng.uniform(r_lo + g * t_mid, r_hi - g * t_mid)
    if name in ("grow", "shrink"):
        log_radius = m + (g if name == "grow" else -g) * (np.arange(spec.num_frames) - t_mid)
    else:
        tau = rng.integers(spec.num_frames)
        log_radius = np.full(spec.num_frames, m + g * (tau - t_mid))

    speed = rng.uniform(*spec.speed) * spec.scale
    velocity = {"move_left": (-speed, 0.0), "move_right": (speed, 0.0),
                "move_up": (0.0, -speed), "move_down": (0.0, speed)}.get(name, (0.0, 0.0))
    spin = math.radians(rng.uniform(*spec.spin))
    # Image y points down, so a growing angle turns clockwise on screen.
    spin = {"rotate_cw": spin, "rotate_ccw": -spin}.get(name, 0.0)

    background = _two_colours(rng)
    while True:  # rejection sampling: a shape colour that stands out from the texture
        colour = rng.uniform(0, 255, size=3)
        if _distance_to_segment(colour, *background) >= _MIN_CONTRAST:
            break
    mark = np.zeros(3) if colour.mean() > 127.5 else np.full(3, 255.0)
    return {
        "label": int(label),
        "class_name": name,
        "shape": SHAPES[rng.integers(len(SHAPES))],
        "texture": TEXTURES[rng.integers(len(TEXTURES))],
        "background_colours": background,
        "texture_rng_state": rng.integers(2**63),
        "colour": colour,
        "mark_colour": mark,
        "start": (rng.uniform(0, spec.width), rng.uniform(0, spec.height)),
        "velocity": velocity,
        "angle0": rng.uniform(0.0, 2.0 * math.pi),
        "spin": spin,
        "log_radius": log_radius,
    }


def trajectory(params, spec=MotionSpec()):
    """Per frame: centre x, y (wrapped into the frame), radius, angle; each [T]."""
    t = np.arange(spec.num_frames, dtype=np.float64)
    (x0, y0), (vx, vy) = params["start"], params["velocity"]
    return {"x": (x0 + vx * t) % spec.width, "y": (y0 + vy * t) % spec.height,
            "radius": np.exp(params["log_radius"]),
            "angle": params["angle0"] + params["spin"] * t}


def _coverage(points, height, width):
    """Fraction [H, W] float32 of each pixel covered by polygon `points` [N, 2] (pixel
    centres at integer coordinates) on a torus: 9 shifted copies."""
    f = _SUPERSAMPLE
    big = np.zeros((height * f, width * f), np.uint8)
    # Pixel x spans [x - 1/2, x + 1/2] and holds big pixels f x .. f x + f - 1, so big
    # pixel b is centred at (b + 1/2) / f - 1/2: a point p lands at f (p + 1/2) - 1/2.
    polys = [np.round((f * (points + (dx + 0.5, dy + 0.5)) - 0.5) * (1 << _SHIFT))
             .astype(np.int32) for dx in (-width, 0, width) for dy in (-height, 0, height)]
    cv2.fillPoly(big, polys, 255, lineType=cv2.LINE_8, shift=_SHIFT)
    return cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(
        np.float32) / 255.0


def render_clip(params, spec=MotionSpec()):
    """(frames uint8 [T, H, W, 3] RGB, shape alpha [T, H, W], mark alpha [T, H, W]).

    The alphas (float32 in [0, 1], anti-aliased coverage) are the generator's ground
    truth of where the shape and its marking disc are in every frame.
    """
    h, w = spec.height, spec.width
    tex_rng = np.random.default_rng(params["texture_rng_state"])
    background = texture(params["texture"], params["background_colours"], tex_rng, h, w)
    unit = _unit_shape(params["shape"])
    disc = _unit_shape("circle")
    path = trajectory(params, spec)
    frames = np.empty((spec.num_frames, h, w, 3), np.uint8)
    shape_alpha = np.empty((spec.num_frames, h, w), np.float32)
    mark_alpha = np.empty((spec.num_frames, h, w), np.float32)
    for t in range(spec.num_frames):
        c, s = math.cos(path["angle"][t]), math.sin(path["angle"][t])
        rot = np.array([[c, s], [-s, c]])  # row vectors: p @ rot rotates by +angle
        centre = np.array([path["x"][t], path["y"][t]])
        r = path["radius"][t]
        shape_alpha[t] = _coverage(centre + r * unit @ rot, h, w)
        mark_centre = centre + 0.5 * r * np.array([c, s])
        mark_alpha[t] = _coverage(mark_centre + 0.28 * r * disc, h, w)
        a = shape_alpha[t][..., None]
        frame = background * (1.0 - a) + params["colour"] * a
        a = mark_alpha[t][..., None]
        frame = frame * (1.0 - a) + params["mark_colour"] * a
        frames[t] = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    return frames, shape_alpha, mark_alpha


def class_sequence(num, rng, num_classes=len(CLASSES)):
    """Balanced labels: consecutive seeded permutations of the class indices."""
    blocks = [rng.permutation(num_classes) for _ in range(-(-num // num_classes))]
    return np.concatenate(blocks)[:num] if blocks else np.zeros(0, np.int64)


def sample_params_list(num, seed, spec=MotionSpec()):
    """The parameters of clips 0 .. num-1; clip k depends only on (seed, k, its class)."""
    root = np.random.SeedSequence(seed)
    labels_seq, clips_seq = root.spawn(2)
    labels = class_sequence(num, np.random.default_rng(labels_seq))
    return [sample_params(int(label), np.random.default_rng(child), spec)
            for label, child in zip(labels, clips_seq.spawn(num))]


def sample_clips(num, seed, spec=MotionSpec()):
    """Yields (frames, class name) for `num` clips."""
    for params in sample_params_list(num, seed, spec):
        yield render_clip(params, spec)[0], params["class_name"]
