"""Moving-shapes segmentation videos with exact optical flow (for Deep Feature Flow).

    python -m keras_video.data.generate segmentation --out DIR --num N --seed S \
        [--frames 30] [--size 128] [--classes 4]

A clip is a stack of layers, back to front: a textured background that pans slowly,
then 3 - 5 textured shapes that move, turn and grow or shrink, each at constant rates.
Class 0 is the background; class c >= 1 is one shape family (ellipse, rectangle,
triangle, star, cross, hexagon, pentagon) whose textures are in hues around its own
hue, so shape and colour both tell the class. Every clip holds every class at least
once (objects can still leave the frame or be hidden for a while).

Geometry. Layer l has a canonical plane (u in R^2: the shape's polygon of radius 1 for
an object, pixels for the background) and, per frame t, an affine map A_t^l (2 x 3)
to image coordinates: p = A_t^l[:, :2] u + A_t^l[:, 2]. Image coordinates put the
centre of pixel (row y, column x) at p = (x, y). A pixel shows the front-most layer
whose polygon contains its centre (no anti-aliasing, so masks and frames agree
exactly); its colour is that layer's texture, a sum of cosines in the canonical plane
evaluated at the pixel centre, so frames have no sampling error of their own.

Flow convention (what keras_video.layers.FlowWarp consumes): for a current frame t and
a key frame k, flow_{t->k}[y, x] = (dx, dy) in pixels, channel 0 = x, such that pixel
(x, y) of frame t shows the surface point found at (x + dx, y + dy) in frame k; so
sampling frame k bilinearly at (x + dx, y + dy) reconstructs frame t (backward
warping). At every pixel the flow is that of the front-most layer at the pixel in
frame t: flow = A_k^l (A_t^l)^-1 p - p. Where that surface point is hidden in frame k
(occlusion) or outside it, the flow still says where the point went; `flow_valid`
tells where it is visible. `flow_between(meta, t, k)` computes it for any t, k.

On disk (`DIR/clip_NNNNN/`, next to DIR/generate.json):
    frames.avi          MJPG video, 15 fps (lossy; `render_clip(meta)` re-renders the
                        frames losslessly from meta.json)
    masks/TTTTTT.png    uint8 class id per pixel, frame TTTTTT (0-based)
    flow/TTTTTT.npy     float32 [H, W, 2] flow_{t->t-1} for t >= 1 (none for frame 0)
    meta.json           sizes, class names, and per layer (back to front): class id,
                        canonical polygon, per-frame affine maps, texture
Read a clip with `load_segmentation_clip(folder)`.

Sizes (for 128 x 128; distances scale with the shorter side): object radius 12 - 22 px,
speed 0.3 - 1.5 px per frame, turning up to 3 degrees and scaling up to 1.2 % per
frame; background panning 0.2 - 0.6 px per frame. Texture wavelengths are at least
8 px in the image, which keeps bilinear warping accurate.
"""

import colorsys
import dataclasses
import json
import math
import os

import cv2
import numpy as np

SHAPE_CLASSES = ("ellipse", "rectangle", "triangle", "star", "cross", "hexagon", "pentagon")
MAX_CLASSES = len(SHAPE_CLASSES) + 1
META = "meta.json"
_META_VERSION = 1


@dataclasses.dataclass(frozen=True)
class SegmentationSpec:
    height: int = 128
    width: int = 128
    num_frames: int = 30
    num_classes: int = 4  # background included
    fps: float = 15.0
    extra_objects: tuple = (0, 2)  # objects beyond one per class, inclusive range
    radius: tuple = (12.0, 22.0)  # at the middle frame, px at a 128 px shorter side
    speed: tuple = (0.3, 1.5)  # px per frame at a 128 px shorter side
    max_spin: float = 3.0  # degrees per frame
    max_growth: float = 0.012  # d log(scale) per frame
    pan_speed: tuple = (0.2, 0.6)  # px per frame at a 128 px shorter side
    min_wavelength: float = 8.0  # px in the image, for every texture

    def __post_init__(self):
        if not 2 <= self.num_classes <= MAX_CLASSES:
            raise ValueError(f"--classes must be between 2 and {MAX_CLASSES} (background "
                             f"included), got {self.num_classes}")
        if self.num_frames < 2:
            raise ValueError(f"segmentation needs at least 2 frames, got {self.num_frames}")
        if min(self.height, self.width) < 32:
            raise ValueError(f"segmentation frames must be at least 32 x 32, got "
                             f"{self.height} x {self.width}")

    @property
    def scale(self):
        return min(self.height, self.width) / 128.0


def class_names(num_classes):
    return ["background", *SHAPE_CLASSES[:num_classes - 1]]


# ---------------------------------------------------------------- drawing the clip


def _polygon(name, rng):
    """Canonical polygon [N, 2] of radius about 1 for a shape family."""
    def regular(n, radii=(1.0,)):
        a = np.arange(n * len(radii)) * 2.0 * math.pi / (n * len(radii))
        rho = np.resize(np.array(radii), len(a))
        return np.stack([rho * np.cos(a), rho * np.sin(a)], -1)

    if name == "ellipse":
        return regular(64) * (1.0, rng.uniform(0.55, 0.95))
    if name == "rectangle":
        aspect = rng.uniform(0.5, 0.9)
        return np.array([(1, aspect), (-1, aspect), (-1, -aspect), (1, -aspect)]) / math.hypot(1, aspect)
    if name == "triangle":
        return regular(3)
    if name == "star":
        return regular(5, (1.0, 0.5))
    if name == "cross":
        w = 0.35
        return np.array([(1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w),
                         (-w, -w), (-w, -1), (w, -1), (w, -w), (1, -w)])
    if name == "hexagon":
        return regular(6)
    if name == "pentagon":
        return regular(5)
    raise ValueError(f"unknown shape {name!r}")


def _waves(rng, count, wavelength, amplitude):
    """`count` cosines with wavelengths in `wavelength` (canonical units), random
    directions and phases, and RGB amplitudes from `amplitude(rng)`."""
    out = []
    for _ in range(count):
        direction = rng.uniform(0.0, 2.0 * math.pi)
        k = 2.0 * math.pi / rng.uniform(*wavelength)
        out.append({"k": [k * math.cos(direction), k * math.sin(direction)],
                    "phase": rng.uniform(0.0, 2.0 * math.pi),
                    "amplitude": [float(a) for a in amplitude(rng)]})
    return out


def _background_texture(rng, spec):
    count = 10
    # Low saturation (greys, browns) keeps the objects' hues apart from the background;
    # amplitudes summing to at most 75 keep every value inside [15, 240] without clipping.
    base = rng.uniform(90.0, 165.0) + rng.uniform(-15.0, 15.0, size=3)

    def amplitude(rng):  # mostly grey: a shared part and a small per-channel part
        shared = rng.choice([-0.8, 0.8])
        return rng.uniform(0.5, 1.0) * (75.0 / count) * (shared + rng.uniform(-0.2, 0.2, 3))

    lo = spec.min_wavelength * 1.25
    return {"base": [float(b) for b in base],
            "waves": _waves(rng, count, (lo, 5.0 * lo), amplitude)}


def _object_texture(rng, class_id, num_classes, min_scale, spec):
    """Two crossed stripe patterns between two colours of the class's hue; the
    wavelengths are in canonical units, at least spec.min_wavelength px at the
    object's smallest scale."""
    hue = (class_id - 1) / max(num_classes - 1, 1) * 0.85
    colours = []
    for value in ((0.3, 0.55), (0.75, 1.0)):  # a dark and a light shade: visible stripes
        h = (hue + rng.uniform(-0.04, 0.04)) % 1.0
        colours.append(255.0 * np.array(colorsys.hsv_to_rgb(h, rng.uniform(0.6, 1.0),
                                                              rng.uniform(*value))))
    c1, c2 = colours
    lo = spec.min_wavelength / min_scale
    return {"base": [float(v) for v in (c1 + c2) / 2.0],
            "waves": _waves(rng, 2, (lo, 1.8 * lo), lambda rng: (c2 - c1) / 4.0)}


def _affine(scale, angle, tx, ty):
    c, s = scale * math.cos(angle), scale * math.sin(angle)
    return [[c, -s, tx], [s, c, ty]]


def sample_meta(rng, spec=SegmentationSpec()):
    """The whole description of one clip (JSON-able): geometry and textures."""
    t = np.arange(spec.num_frames, dtype=np.float64)
    t_mid = (spec.num_frames - 1) / 2.0
    size = spec.scale
    pan_angle = rng.uniform(0.0, 2.0 * math.pi)
    pan = rng.uniform(*spec.pan_speed) * size
    # Background canonical plane = image plane at frame 0, shifted by the pan.
    layers = [{"class_id": 0, "polygon": None,
               "affine": [_affine(1.0, 0.0, pan * math.cos(pan_angle) * ti,
                                  pan * math.sin(pan_angle) * ti) for ti in t],
               "texture": _background_texture(rng, spec)}]
    n_extra = rng.integers(spec.extra_objects[0], spec.extra_objects[1] + 1)
    classes = list(range(1, spec.num_classes)) + list(
        rng.integers(1, spec.num_classes, size=n_extra))
    for class_id in rng.permutation(classes):  # order = depth, back to front
        class_id = int(class_id)
        radius = rng.uniform(*spec.radius) * size
        growth = rng.uniform(-spec.max_growth, spec.max_growth)
        scale = radius * np.exp(growth * (t - t_mid))
        angle = rng.uniform(0.0, 2.0 * math.pi) + math.radians(
            rng.uniform(-spec.max_spin, spec.max_spin)) * t
        direction = rng.uniform(0.0, 2.0 * math.pi)
        speed = rng.uniform(*spec.speed) * size
        # Centre at the middle frame well inside the image, so most of the clip sees it.
        cx = rng.uniform(0.2, 0.8) * spec.width + speed * math.cos(direction) * (t - t_mid)
        cy = rng.uniform(0.2, 0.8) * spec.height + speed * math.sin(direction) * (t - t_mid)
        layers.append({
            "class_id": class_id,
            "polygon": _polygon(SHAPE_CLASSES[class_id - 1], rng).tolist(),
            "affine": [_affine(s, a, x, y) for s, a, x, y in zip(scale, angle, cx, cy)],
            "texture": _object_texture(rng, class_id, spec.num_classes, scale.min(), spec),
        })
    return {"version": _META_VERSION, "height": spec.height, "width": spec.width,
            "num_frames": spec.num_frames, "fps": spec.fps,
            "class_names": class_names(spec.num_classes), "layers": layers}


def sample_metas(num, seed, spec=SegmentationSpec()):
    """Yields the meta of clips 0 .. num-1; clip k depends only on (seed, k)."""
    for child in np.random.SeedSequence(seed).spawn(num):
        yield sample_meta(np.random.default_rng(child), spec)


# ---------------------------------------------------------------- evaluating the geometry


def _affines(meta, layer):
    return np.asarray(meta["layers"][layer]["affine"], np.float64)  # [T, 2, 3]


def _apply(affine, points):
    return points @ affine[:, :2].T + affine[:, 2]


def _invert(affine):
    inv = np.linalg.inv(affine[:, :2])
    return np.concatenate([inv, -inv @ affine[:, 2:]], axis=1)


def _inside(polygon, points):
    """Even-odd rule: which of `points` [N, 2] lie inside `polygon` [M, 2]."""
    x, y = points[:, 0], points[:, 1]
    inside = np.zeros(len(points), bool)
    xj, yj = polygon[-1]
    for xi, yi in polygon:
        crosses = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = xi + (y - yi) * (xj - xi) / (yj - yi)
        inside ^= crosses & (x < x_cross)
        xj, yj = xi, yi
    return inside


def pixel_centres(meta):
    """[H * W, 2] (x, y) of every pixel centre, row-major."""
    y, x = np.mgrid[0:meta["height"], 0:meta["width"]].astype(np.float64)
    return np.stack([x.ravel(), y.ravel()], -1)


def layer_at(meta, t, points):
    """Index (into meta["layers"]) of the front-most layer at `points` [N, 2] (x, y) in
    frame t; 0 (the background) covers everything."""
    out = np.zeros(len(points), np.int64)
    for layer in range(1, len(meta["layers"])):
        polygon = np.asarray(meta["layers"][layer]["polygon"], np.float64)
        canonical = _apply(_invert(_affines(meta, layer)[t]), points)
        out[_inside(polygon, canonical)] = layer
    return out


def layer_map(meta, t):
    """Front-most layer index per pixel of frame t, int64 [H, W]."""
    return layer_at(meta, t, pixel_centres(meta)).reshape(meta["height"], meta["width"])


def class_map(meta, t):
    """Class id per pixel of frame t, uint8 [H, W] (what masks/TTTTTT.png holds)."""
    ids = np.array([layer["class_id"] for layer in meta["layers"]], np.uint8)
    return ids[layer_map(meta, t)]


def _texture(texture, canonical):
    colour = np.broadcast_to(np.asarray(texture["base"], np.float64),
                             (len(canonical), 3)).copy()
    for wave in texture["waves"]:
        phase = canonical @ np.asarray(wave["k"]) + wave["phase"]
        colour += np.cos(phase)[:, None] * np.asarray(wave["amplitude"])
    return colour


def render_frame(meta, t):
    """Frame t without rounding or compression: float64 [H, W, 3] RGB in [0, 255]."""
    points = pixel_centres(meta)
    layers = layer_at(meta, t, points)
    out = np.empty((len(points), 3), np.float64)
    for layer in np.unique(layers):
        sel = layers == layer
        canonical = _apply(_invert(_affines(meta, layer)[t]), points[sel])
        out[sel] = _texture(meta["layers"][layer]["texture"], canonical)
    return np.clip(out, 0.0, 255.0).reshape(meta["height"], meta["width"], 3)


def render_clip(meta):
    """(frames uint8 [T, H, W, 3] RGB, masks uint8 [T, H, W]) exactly as written,
    before MJPEG compression of the frames."""
    frames = np.stack([np.round(render_frame(meta, t)).astype(np.uint8)
                       for t in range(meta["num_frames"])])
    masks = np.stack([class_map(meta, t) for t in range(meta["num_frames"])])
    return frames, masks


def flow_between(meta, t, k):
    """flow_{t->k}, float32 [H, W, 2] (dx, dy) in pixels: pixel (x, y) of frame t shows
    the surface point at (x + dx, y + dy) of frame k (see the module docstring)."""
    return flows_from(meta, t, [k])[0]


def flows_from(meta, t, keys):
    """flow_between(meta, t, k) for every k in `keys`, float32 [len(keys), H, W, 2]; the
    front-most layer of each pixel of frame t (the costly part) is found once."""
    points = pixel_centres(meta)
    layers = layer_at(meta, t, points)
    flows = np.zeros((len(keys), *points.shape))
    for layer in np.unique(layers):
        sel = layers == layer
        affines = _affines(meta, layer)
        canonical = _apply(_invert(affines[t]), points[sel])
        for i, k in enumerate(keys):
            flows[i, sel] = _apply(affines[k], canonical) - points[sel]
    return flows.reshape(len(keys), meta["height"], meta["width"], 2).astype(np.float32)


def flow_valid(meta, t, k):
    """bool [H, W]: where flow_between(meta, t, k) lands inside frame k on the same
    layer, i.e. the surface point seen in frame t is visible in frame k."""
    points = pixel_centres(meta)
    target = points + flow_between(meta, t, k).reshape(-1, 2).astype(np.float64)
    inside = ((target[:, 0] >= 0) & (target[:, 0] <= meta["width"] - 1) &
              (target[:, 1] >= 0) & (target[:, 1] <= meta["height"] - 1))
    same = layer_at(meta, k, target) == layer_at(meta, t, points)
    return (inside & same).reshape(meta["height"], meta["width"])


# ---------------------------------------------------------------- files


def write_clip(folder, meta, write_video):
    """Writes one clip's files into `folder`; `write_video(path, frames_rgb, fps)`."""
    os.makedirs(os.path.join(folder, "masks"), exist_ok=True)
    os.makedirs(os.path.join(folder, "flow"), exist_ok=True)
    frames, masks = render_clip(meta)
    write_video(os.path.join(folder, "frames.avi"), frames, meta["fps"])
    for t, mask in enumerate(masks):
        path = os.path.join(folder, "masks", f"{t:06d}.png")
        if not cv2.imwrite(path, mask):
            raise OSError(f"{path}: cv2.imwrite failed")
        if t > 0:
            np.save(os.path.join(folder, "flow", f"{t:06d}.npy"), flow_between(meta, t, t - 1))
    with open(os.path.join(folder, META), "w") as f:
        # repr-exact floats: flow_between on the loaded meta equals the writer's.
        json.dump(meta, f)


def list_clips(root):
    """The clip folders under a `generate segmentation` output folder, in order."""
    names = sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, META)))
    if not names:
        raise FileNotFoundError(f"{root}: holds no clip folders with {META}")
    return [os.path.join(root, n) for n in names]


def load_segmentation_clip(folder):
    """(frames uint8 [T, H, W, 3] RGB (decoded MJPEG), masks uint8 [T, H, W], meta)."""
    from keras_video.data import decode

    meta_path = os.path.join(folder, META)
    if not os.path.isfile(meta_path):
        raise FileNotFoundError(f"{meta_path}: missing (not a segmentation clip folder)")
    with open(meta_path) as f:
        meta = json.load(f)
    frames = decode.read_all_frames(os.path.join(folder, "frames.avi"))
    masks = []
    for t in range(meta["num_frames"]):
        path = os.path.join(folder, "masks", f"{t:06d}.png")
        mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise FileNotFoundError(f"{path}: missing or unreadable mask")
        masks.append(mask)
    shape = (meta["num_frames"], meta["height"], meta["width"])
    if frames.shape[:3] != shape:
        raise ValueError(f"{folder}/frames.avi: {frames.shape[:3]} frames, meta says {shape}")
    return frames, np.stack(masks), meta


def load_flow(folder, t):
    """The stored flow_{t->t-1} of frame t >= 1, float32 [H, W, 2]."""
    if t < 1:
        raise ValueError(f"frame {t} has no previous frame, so no stored flow")
    return np.load(os.path.join(folder, "flow", f"{t:06d}.npy"))
