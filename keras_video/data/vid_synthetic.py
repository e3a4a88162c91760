"""Synthetic videos for video object detection, annotated as ILSVRC2015 VID.

    python -m keras_video.data.generate vid --out ROOT [--num 40] [--num_val 10] \
        [--num_det N] [--seed 0] [--frames 30] [--size 128] [--classes 3]

writes ROOT in exactly the layout of ILSVRC2015 VID + DET as Deep Feature Flow reads it
(see `keras_video.data.generate.write_vid` and `keras_video.data.imagenet_vid`), so the
same reader, lists and training code serve the real and the synthetic data set. This
module draws and renders the videos; `generate` writes them.

A video is the layer stack of `moving_shapes` (its geometry, textures and renderer's
helpers are reused): a textured background panning at 0.2 - 1 px per frame, and 2 - 4
objects in front of it, back to front. Class c (1..K) is one shape family of
moving_shapes.SHAPE_CLASSES (ellipse, rectangle, triangle, ...) with its own hue
(two crossed stripe patterns between a dark and a light shade of it), so shape, colour
and texture each tell the classes apart. Objects move along straight lines at
constant speed, grow or shrink and turn at constant rates, hide each other (random
depth order), and may enter or leave the frame (the path is anchored at a random
frame, so fast objects cross the border).

Speed. FGFA (Flow-Guided-Feature-Aggregation, README) reports accuracy for slow,
medium and fast objects by motion IoU (`imagenet_vid.motion_iou`: mean IoU with the
object's own boxes within +-10 frames; slow > 0.9, medium 0.7 - 0.9, fast < 0.7).
Each object draws one of the three buckets with equal odds and a target motion IoU
well inside it (SPEED_PROFILES), then gets the speed at which the motion IoU of its
whole (unclipped, unoccluded) box over the video's frames is that target (bisection);
slow objects also turn and scale little. Clipping at the border and occlusion change
the annotated boxes, so the buckets of the annotations are near, not equal to, the
drawn ones; `tests/data/test_vid_synthetic.py` checks that all three occur.

Annotations follow ILSVRC: a frame's objects are those with at least `min_visible`
(10) visible pixels; the box is the tight box of the object's visible pixels
(x1, y1, x2, y2 pixel indices, inclusive, as VOC and ILSVRC write them), so it is
truncated at the image border and by occluders, as annotators draw visible extents;
`occluded` is set where objects in front hide at least `occluded_fraction` (10 %) of
its pixels inside the image; track ids number a video's objects from 0.

Sizes. 128 x 128 frames by default, 30 a video: small enough for a detector trained
on CPUs (3 classes; objects of radius 12 - 26 px, boxes about 20 - 52 px a side, on a
stride-16 feature map of 8 x 8), large enough for the objects to move 10 - 70 px over
a video; the default set (`generate vid`: 40 train and 10 val videos, 600 DET images)
takes about 30 s on one core and 26 MB. Distances scale with the shorter side
(VidSpec), so --size 64 halves the objects and speeds. Every
video and DET image is a function of (seed, split, index) only: a data set can be
written in any order, resumed, or grown with more videos without changing the others.
"""

import dataclasses
import math

import numpy as np

from keras_video.data import imagenet_vid
from keras_video.data import moving_shapes as shapes

SPLITS = ("train", "val", "det")
MAX_CLASSES = min(len(shapes.SHAPE_CLASSES), len(imagenet_vid.WNIDS))  # a shape family each  # the draw of video k of a split: (seed, split, k)


@dataclasses.dataclass(frozen=True)
class SpeedProfile:
    """How objects of one FGFA speed bucket move."""

    motion_iou: tuple  # (low, high) of the target motion IoU of the whole box
    max_spin: float  # degrees per frame
    max_growth: float  # d log(scale) per frame


SPEED_PROFILES = {
    "slow": SpeedProfile((0.93, 0.985), 0.3, 0.002),
    "medium": SpeedProfile((0.74, 0.86), 1.5, 0.006),
    "fast": SpeedProfile((0.35, 0.62), 3.0, 0.012),
}


@dataclasses.dataclass(frozen=True)
class VidSpec:
    height: int = 128
    width: int = 128
    num_frames: int = 30
    num_classes: int = 3  # object classes; the background is not one
    objects: tuple = (2, 4)  # objects per video (per DET image), inclusive range
    radius: tuple = (12.0, 26.0)  # px at a 128 px shorter side, at the anchor frame
    pan_speed: tuple = (0.2, 1.0)  # px per frame at a 128 px shorter side
    min_wavelength: float = 6.0  # px in the image, for every texture
    min_visible: int = 10  # visible pixels for an object to be annotated in a frame
    occluded_fraction: float = 0.1  # hidden share of its in-image pixels: occluded
    window: int = imagenet_vid.MOTION_WINDOW  # frames each side, for the motion IoU

    def __post_init__(self):
        if not 1 <= self.num_classes <= MAX_CLASSES:
            raise ValueError(f"--classes must be between 1 and {MAX_CLASSES} (object classes, "
                             f"one shape family each), got {self.num_classes}")
        if self.num_frames < 1:
            raise ValueError(f"need at least 1 frame, got {self.num_frames}")
        if min(self.height, self.width) < 32:
            raise ValueError(f"vid frames must be at least 32 x 32, got "
                             f"{self.height} x {self.width}")
        if not 1 <= self.objects[0] <= self.objects[1]:
            raise ValueError(f"objects must be a range 1 <= low <= high, got "
                             f"{self.objects}")

    @property
    def scale(self):
        return min(self.height, self.width) / 128.0


def class_wnids(num_classes):
    """The WordNet ids of the K generated classes: the first K VID classes (so
    imagenet_vid's reader, with its default 30 classes, reads them unchanged)."""
    return imagenet_vid.WNIDS[:num_classes]


def class_shapes(num_classes):
    """The shape family of each generated class, in class order."""
    return shapes.SHAPE_CLASSES[:num_classes]


def rng_for(seed, split, index):
    """The random generator of video (or DET image) `index` of `split`."""
    return np.random.default_rng(np.random.SeedSequence(
        int(seed), spawn_key=(SPLITS.index(split), int(index))))


# ---------------------------------------------------------------- drawing a video


def _track_boxes(polygon, scale, angle, centre):
    """Boxes [T, 4] (x1, y1, x2, y2) around the polygon [V, 2] under the affine maps
    of moving_shapes._affine(scale[t], angle[t], *centre[t])."""
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    px, py = polygon[:, 0][None], polygon[:, 1][None]
    x = scale[:, None] * (c * px - s * py) + centre[:, :1]
    y = scale[:, None] * (s * px + c * py) + centre[:, 1:]
    return np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], -1)


def _speed_for(target, polygon, scale, angle, anchor, direction, dt, window):
    """The speed (px per frame) along `direction` at which the mean motion IoU of the
    object's whole box over the frames is `target` (0 where turning and scaling alone
    already bring it below)."""
    unit = np.array([math.cos(direction), math.sin(direction)])

    def mean_iou(speed):
        centre = anchor + speed * dt[:, None] * unit
        boxes = _track_boxes(polygon, scale, angle, centre)
        return imagenet_vid.track_motion_iou(boxes, window).mean()

    if len(dt) < 2 or mean_iou(0.0) <= target:
        return 0.0
    lo, hi = 0.0, 2.0 * float(scale.max())  # 2 radii a frame: no overlap at all
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mean_iou(mid) > target else (lo, mid)
    return 0.5 * (lo + hi)


def sample_video(rng, spec=VidSpec()):
    """The whole description of one video (JSON-able): a moving_shapes meta (layers
    back to front: class id, canonical polygon, per-frame affine maps, texture) whose
    object layers also hold their track id, drawn speed bucket and target motion IoU."""
    t = np.arange(spec.num_frames, dtype=np.float64)
    size = spec.scale
    pan_angle = rng.uniform(0.0, 2.0 * math.pi)
    pan = rng.uniform(*spec.pan_speed) * size
    layers = [{"class_id": 0, "polygon": None,
               "affine": [shapes._affine(1.0, 0.0, pan * math.cos(pan_angle) * ti,
                                         pan * math.sin(pan_angle) * ti) for ti in t],
               "texture": shapes._background_texture(rng, spec)}]
    count = int(rng.integers(spec.objects[0], spec.objects[1] + 1))
    for track in range(count):
        class_id = int(rng.integers(1, spec.num_classes + 1))
        speed_name = imagenet_vid.SPEEDS[int(rng.integers(len(imagenet_vid.SPEEDS)))]
        profile = SPEED_PROFILES[speed_name]
        target = rng.uniform(*profile.motion_iou)
        polygon = shapes._polygon(shapes.SHAPE_CLASSES[class_id - 1], rng)
        t_anchor = rng.uniform(0.0, spec.num_frames - 1.0)
        dt = t - t_anchor
        radius = rng.uniform(*spec.radius) * size
        scale = radius * np.exp(rng.uniform(-profile.max_growth, profile.max_growth) * dt)
        angle = rng.uniform(0.0, 2.0 * math.pi) + math.radians(
            rng.uniform(-profile.max_spin, profile.max_spin)) * t
        direction = rng.uniform(0.0, 2.0 * math.pi)
        anchor = rng.uniform(0.0, 1.0, size=2) * (spec.width, spec.height)
        speed = _speed_for(target, polygon, scale, angle, anchor, direction, dt,
                           spec.window)
        cx = anchor[0] + speed * math.cos(direction) * dt
        cy = anchor[1] + speed * math.sin(direction) * dt
        layers.append({
            "class_id": class_id, "track_id": track, "speed": speed_name,
            "target_motion_iou": float(target), "px_per_frame": float(speed),
            "polygon": polygon.tolist(),
            "affine": [shapes._affine(s, a, x, y)
                       for s, a, x, y in zip(scale, angle, cx, cy)],
            "texture": shapes._object_texture(rng, class_id, spec.num_classes + 1,
                                              scale.min(), spec),
        })
    # Depth order: a random permutation, so track ids say nothing of who hides whom.
    order = rng.permutation(count) + 1
    layers = [layers[0]] + [layers[i] for i in order]
    return {"height": spec.height, "width": spec.width, "num_frames": spec.num_frames,
            "class_wnids": list(class_wnids(spec.num_classes)),
            "class_shapes": list(class_shapes(spec.num_classes)),
            "min_visible": spec.min_visible, "occluded_fraction": spec.occluded_fraction,
            "layers": layers}


def video_meta(seed, index, spec=VidSpec(), split="train"):
    """sample_video for video `index` of `split` ("train" or "val") under `seed`."""
    return sample_video(rng_for(seed, split, index), spec)


# ---------------------------------------------------------------- rendering


def _render_frame(meta, affines, t, points):
    """(frame uint8 [H, W, 3], annotation dict) of frame t. The pixels are those of
    moving_shapes.render_frame (front-most layer whose polygon holds the pixel centre,
    its texture there), testing each polygon only over its bounding box."""
    height, width = meta["height"], meta["width"]
    owner = np.zeros(height * width, np.int64)
    covers = [None]
    for layer in range(1, len(meta["layers"])):
        affine = affines[layer][t]
        polygon = np.asarray(meta["layers"][layer]["polygon"], np.float64)
        corners = shapes._apply(affine, polygon)
        x0, y0 = (max(math.ceil(v), 0) for v in corners.min(0))
        x1 = min(math.floor(corners[:, 0].max()), width - 1)
        y1 = min(math.floor(corners[:, 1].max()), height - 1)
        if x0 > x1 or y0 > y1:
            covers.append(np.zeros(0, np.int64))
            continue
        ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        index = (ys * width + xs).ravel()
        hit = shapes._inside(polygon, shapes._apply(shapes._invert(affine), points[index]))
        covers.append(index[hit])
        owner[index[hit]] = layer
    colour = np.empty((height * width, 3), np.float64)
    for layer in np.unique(owner):
        sel = owner == layer
        canonical = shapes._apply(shapes._invert(affines[layer][t]), points[sel])
        colour[sel] = shapes._texture(meta["layers"][layer]["texture"], canonical)
    frame = np.round(np.clip(colour, 0.0, 255.0)).astype(np.uint8)
    found = []  # (track id, box, label, occluded)
    for layer in range(1, len(meta["layers"])):
        cover = covers[layer]
        visible = cover[owner[cover] == layer]
        if len(visible) < meta["min_visible"]:
            continue
        ys, xs = np.divmod(visible, width)
        hidden = len(cover) - len(visible)
        info = meta["layers"][layer]
        found.append((info["track_id"], (xs.min(), ys.min(), xs.max(), ys.max()),
                      info["class_id"], hidden >= meta["occluded_fraction"] * len(cover)))
    found.sort(key=lambda f: f[0])
    objects = {"boxes": np.array([f[1] for f in found], np.int64).reshape(-1, 4),
               "labels": np.array([f[2] for f in found], np.int64),
               "track_ids": np.array([f[0] for f in found], np.int64),
               "occluded": np.array([f[3] for f in found], bool)}
    return frame.reshape(height, width, 3), objects


def render_video(meta):
    """(frames uint8 [T, H, W, 3] RGB, objects): objects[t] is a dict of frame t's
    annotated objects in track id order, keyed as imagenet_vid.read_annotation's
    result: "boxes" int64 [N, 4] (x1, y1, x2, y2 pixel indices of the visible
    pixels, inclusive), "labels" int64 [N] (1 + class index, the class of wnid
    meta["class_wnids"][label - 1]), "track_ids" int64 [N], "occluded" bool [N]."""
    affines = [None] + [np.asarray(layer["affine"], np.float64)
                        for layer in meta["layers"][1:]]
    affines[0] = np.asarray(meta["layers"][0]["affine"], np.float64)
    points = shapes.pixel_centres(meta)
    frames, objects = [], []
    for t in range(meta["num_frames"]):
        frame, found = _render_frame(meta, affines, t, points)
        frames.append(frame)
        objects.append(found)
    return np.stack(frames), objects


def render(seed, index, spec=VidSpec(), split="train"):
    """render_video of video `index` of `split` under `seed`: (frames, objects)."""
    return render_video(video_meta(seed, index, spec, split))


def render_det_image(seed, index, spec=VidSpec(), max_tries=20):
    """DET image `index` under `seed`: (image uint8 [H, W, 3], objects of
    render_video's form, track ids included; DET annotations omit them). A one-frame
    scene of the same kind, redrawn until at least one object is visible, as every
    image of DFF's DET_train_30classes list holds at least one VID-class object."""
    spec = dataclasses.replace(spec, num_frames=1)
    rng = rng_for(seed, "det", index)
    for _ in range(max_tries):
        frames, objects = render_video(sample_video(rng, spec))
        if len(objects[0]["labels"]):
            return frames[0], objects[0]
    raise RuntimeError(f"DET image {index} (seed {seed}): no visible object in "
                       f"{max_tries} draws; frames of {spec.height} x {spec.width} too "
                       f"small?")
