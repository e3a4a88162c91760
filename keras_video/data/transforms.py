"""Spatial transforms of a decoded clip, as TensorFlow ops.

OpenCV decodes a clip at `ClipSpec.decode_size` (the intermediate size: `resize`, or
`size` when no crop is wanted); these ops then cut the output `size` from it, with the
same box and the same flip for every frame. They run in the tf.data graph on the uint8
clip, after the cache, so a cache never freezes a random crop, and a future TFRecord
reader can call them unchanged.

Crops (`ClipSpec.crop`):
  center             the `size` box in the middle; nothing to do when the decode size is
                     the output size (the default, as before these transforms existed)
  random             the `size` box at a random place (C3D: 112x112 out of 128x171)
  multiscale_corner  a square of side int(scale * short side), scale drawn from
                     MULTISCALE_SCALES, at a corner or the centre (one of 5), resized to
                     `size`: MultiScaleCornerCrop of Hara et al.'s 3D-ResNets-PyTorch
  square_center      the largest centred square resized to `size`: multiscale_corner's
                     evaluation view (scale 1 at the centre, which is 3D-ResNets'
                     Scale(size) + CenterCrop(size))
`ClipSpec.flip` mirrors the clip left-right with probability 1/2 (a flow clip's dx
changes sign: 255 - q in its uint8 quantization, keras_video.data.optical_flow).

There is no mean/std normalisation here, on purpose: every model normalises its input in
its first layer (keras_video.layers.ImageNormalization), so the pipeline, the exported
SavedModel and `predict` all hand a model the same RGB values in [0, 255]: uint8 from
the pipeline (a Keras model casts its input to float32), float32 in the SavedModel,
which resizes before it crops.
"""

import tensorflow as tf


def resize_like_opencv(images, size):
    """keras_video.data.decode.resize_frame as TensorFlow ops: [..., h, w, C] of any
    dtype -> float32 [..., H, W, C]: area averaging when shrinking (TensorFlow's area
    resize is OpenCV's INTER_AREA), bilinear with half-pixel centres when growing
    (INTER_LINEAR), the images themselves when the size is already right. The one TF
    resize of the package: the TFRecord reader (which rounds it to uint8), the
    SavedModel's serving functions and DFF's export."""
    height, width = size
    x = tf.cast(images, tf.float32)
    shape = tf.shape(x)
    same = tf.logical_and(tf.equal(shape[-3], height), tf.equal(shape[-2], width))
    shrinking = tf.logical_or(shape[-3] > height, shape[-2] > width)

    def resized():
        return tf.cond(shrinking, lambda: tf.image.resize(x, (height, width), "area"),
                       lambda: tf.image.resize(x, (height, width), "bilinear"))

    out = tf.cond(same, lambda: x, resized)
    return tf.ensure_shape(out, (*x.shape[:-3], height, width, x.shape[-1]))

CROPS = ("center", "random", "multiscale_corner", "square_center")
RANDOM_CROPS = ("random", "multiscale_corner")
EVAL_CROP = {"random": "center", "multiscale_corner": "square_center"}
MULTISCALE_SCALES = (1.0, 2 ** -0.25, 2 ** -0.5, 2 ** -0.75, 0.5)
# Seed streams of one element; the temporal crop uses the element seed in numpy.
_SCALE, _POSITION, _FLIP, _OFFSET_Y, _OFFSET_X = range(1, 6)


def check(clip):
    """Raises ValueError for a crop that cannot be cut from the decode size."""
    if clip.crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, not {clip.crop!r}")
    (height, width), (out_h, out_w) = clip.decode_size, clip.size
    if clip.modality == "flow" and _resizes(clip):
        raise ValueError(f"crop {clip.crop!r} resizes, and flow is in pixels of the "
                         "decode size; use crop 'center' or 'random' with modality flow")
    if clip.crop in ("center", "random") and (height < out_h or width < out_w):
        raise ValueError(f"a {clip.crop} crop of {out_h}x{out_w} needs frames at least "
                         f"that large; resize is {height}x{width}")


def _stream(seed, stream):
    return tf.stack([tf.cast(seed, tf.int64), tf.constant(stream, tf.int64)])


def _uniform_int(seed, stream, maxval):
    """An int32 in [0, maxval), drawn from one seed stream of the element."""
    return tf.random.stateless_uniform([], _stream(seed, stream), 0, maxval, tf.int32)


def _fixed_box(clip, position="center"):
    """(y, x, h, w) python ints of the deterministic crops; `position` moves the box to
    the start, centre or end of the frame's long side (the 3-crop views)."""
    height, width = clip.decode_size
    if clip.crop == "square_center":
        box_h = box_w = min(height, width)
    else:
        box_h, box_w = clip.size
    y, x = (height - box_h) // 2, (width - box_w) // 2
    if position != "center":
        end = position == "end"
        if width >= height:
            x = width - box_w if end else 0
        else:
            y = height - box_h if end else 0
    return y, x, box_h, box_w


def _resizes(clip):
    """Whether the crop's box is resized to the output size."""
    if clip.crop in RANDOM_CROPS:
        return clip.crop == "multiscale_corner"
    return _fixed_box(clip)[2:] != tuple(clip.size)


def crop_box(clip, seed):
    """(y, x, h, w) int32 tensors of the crop `seed` draws (random crops), or the
    fixed box of a deterministic crop."""
    if clip.crop not in RANDOM_CROPS:
        return tuple(tf.constant(v) for v in _fixed_box(clip))
    height, width = clip.decode_size
    if clip.crop == "random":
        box_h, box_w = clip.size
        y = _uniform_int(seed, _OFFSET_Y, height - box_h + 1)
        x = _uniform_int(seed, _OFFSET_X, width - box_w + 1)
        return y, x, tf.constant(box_h), tf.constant(box_w)
    sides = [int(min(height, width) * s) for s in MULTISCALE_SCALES]
    side = tf.gather(tf.constant(sides), _uniform_int(seed, _SCALE, len(sides)))
    # centre, top-left, top-right, bottom-left, bottom-right
    ys = tf.stack([(height - side) // 2, 0, 0, height - side, height - side])
    xs = tf.stack([(width - side) // 2, 0, width - side, 0, width - side])
    position = _uniform_int(seed, _POSITION, 5)
    return tf.gather(ys, position), tf.gather(xs, position), side, side


def _cut(frames, box, size, resize):
    """frames [T, H, W, C] -> the box, resized to `size` if asked, in the frames' dtype.

    A uint8 clip stays uint8: the batches that reach the model are a quarter of the
    float32 size (less to batch and prefetch, and less to copy to an accelerator), and
    the model casts them in its first layer. A resized uint8 clip is rounded half up
    and saturated, as PIL's uint8 bilinear resize in 3D-ResNets-PyTorch is."""
    y, x, box_h, box_w = box
    out = tf.slice(frames, tf.stack([0, y, x, 0]), tf.stack([-1, box_h, box_w, -1]))
    if not resize:
        return out
    # Antialiased bilinear, like PIL's bilinear resize. Its float sums can land a hair
    # outside 0..255; PIL's uint8 output cannot.
    resized = tf.clip_by_value(
        tf.image.resize(out, size, method="bilinear", antialias=True), 0.0, 255.0)
    if frames.dtype == tf.uint8:
        return tf.cast(tf.floor(resized + 0.5), tf.uint8)
    return tf.cast(resized, frames.dtype)


def _mirror(frames, modality):
    """Left-right mirror of [T, H, W, C]; flow's dx (uint8, 127.5 = 0) changes sign."""
    out = tf.reverse(frames, axis=[2])
    if modality == "flow":
        out = tf.concat([tf.constant(255, out.dtype) - out[..., :1], out[..., 1:]], -1)
    return out


def apply(frames, clip, seed):
    """One training or evaluation view: uint8 [T, h, w, C] at clip.decode_size ->
    uint8 [T, H, W, C] at clip.size. `seed` (int64 scalar) draws the random crop and
    flip, so the same element seed gives the same view."""
    out = _cut(frames, crop_box(clip, seed), clip.size, _resizes(clip))
    if clip.flip:
        flip = tf.random.stateless_uniform([], _stream(seed, _FLIP)) < 0.5
        out = tf.cond(flip, lambda: _mirror(out, clip.modality), lambda: out)
    out.set_shape(clip.shape)
    return out


def eval_views(frames, clip, three_crop=False):
    """The evaluation views of frames uint8 [N, h, w, C] at clip.decode_size (a clip, or
    several clips stacked): [V, N, H, W, C] in the frames' dtype, V = 1 (the centre
    crop) or 3 (start, centre and end of the frame's long side). `clip` is an evaluation
    ClipSpec (ClipSpec.for_eval())."""
    if clip.crop in RANDOM_CROPS or clip.flip:
        raise ValueError("evaluation views need a deterministic crop; pass clip.for_eval()")
    positions = ("start", "center", "end") if three_crop else ("center",)
    views = []
    for position in positions:
        box = _fixed_box(clip, position)
        views.append(_cut(frames, box, clip.size, resize=box[2:] != tuple(clip.size)))
    out = tf.stack(views)
    out.set_shape((len(positions), frames.shape[0], *clip.size, clip.channels))
    return out
