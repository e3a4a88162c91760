"""The moving-shapes segmentation set (keras_video.data.moving_shapes, `generate
segmentation`): the flow convention is checked by warping losslessly rendered frames
and masks with an independent float64 NumPy sampler; then determinism, classes, the
files and their reader, the CLI and bad input."""

import json
import os

import numpy as np
import pytest

from conftest import run_module
from keras_video.data import datasets
from keras_video.data import generate
from keras_video.data import moving_shapes as ms
from tree_utils import read_tree  # noqa: E402

SPEC = ms.SegmentationSpec()


def bilinear(image, x, y):
    """Samples `image` [H, W, C] at float positions (x, y) [H, W]; returns the samples,
    whether all four neighbours exist, and the top-left neighbour (x0, y0)."""
    h, w = image.shape[:2]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 <= w - 2) & (y0 <= h - 2)
    x0, y0 = np.clip(x0, 0, w - 2), np.clip(y0, 0, h - 2)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    out = (image[y0, x0] * (1 - fx) * (1 - fy) + image[y0, x0 + 1] * fx * (1 - fy) +
           image[y0 + 1, x0] * (1 - fx) * fy + image[y0 + 1, x0 + 1] * fx * fy)
    return out, inside, x0, y0


def interpolation_bound(meta, k):
    """Per layer, the largest error bilinear interpolation of frame k can make: for
    a * cos(q . p) it is at most |a| |q|^2 / 8 per unit grid (|f_xx| + |f_yy| <= |a| |q|^2),
    with q the wave vector in frame k's pixels (canonical q over the layer's scale)."""
    bounds = []
    for layer in meta["layers"]:
        affine = np.asarray(layer["affine"][k])
        scale = np.sqrt(abs(np.linalg.det(affine[:, :2])))
        bound = np.zeros(3)
        for wave in layer["texture"]["waves"]:
            q2 = np.sum(np.square(wave["k"])) / scale ** 2
            bound += np.abs(wave["amplitude"]) * q2 / 8.0
        bounds.append(bound)
    return np.array(bounds)  # [layers, 3]


@pytest.fixture(scope="module")
def metas():
    return list(ms.sample_metas(3, seed=11))


@pytest.mark.parametrize("t, d", [(10, 1), (10, 5), (20, 9), (3, -6)])
def test_warping_key_frame_by_flow_reproduces_current_frame(metas, t, d):
    """flow_between(meta, t, k) with k = t - d: frame k sampled at (x + dx, y + dy)
    equals frame t wherever the four neighbours of the sample lie on the surface that
    frame t shows at (x, y) (visible in both, inside the frame), to within the
    interpolation error the textures allow; zero or negated flow fails that bound."""
    k = t - d
    for meta in metas:
        current, key = ms.render_frame(meta, t), ms.render_frame(meta, k)
        layers_t, layers_k = ms.layer_map(meta, t), ms.layer_map(meta, k)
        flow = ms.flow_between(meta, t, k).astype(np.float64)
        assert flow.shape == (SPEC.height, SPEC.width, 2)
        y, x = np.mgrid[0:SPEC.height, 0:SPEC.width].astype(np.float64)
        bound = interpolation_bound(meta, k)[layers_t]  # [H, W, 3]

        def check(fx, fy):
            warped, inside, x0, y0 = bilinear(key, x + fx, y + fy)
            same = inside & np.logical_and.reduce(
                [layers_k[y0 + i, x0 + j] == layers_t for i in (0, 1) for j in (0, 1)])
            error = np.abs(warped - current)
            return same, error, (error <= bound + 1e-6).all(-1)

        same, error, within = check(flow[..., 0], flow[..., 1])
        assert same.mean() > 0.8  # most pixels are tested, not a vacuous subset
        assert within[same].all(), (error[same].max(), bound.max())
        assert error[same].mean() < 0.5
        # The same check has power: the wrong flows break the bound on many pixels.
        if np.abs(flow).max() > 1.0:
            for fx, fy in ((0 * flow[..., 0], 0 * flow[..., 1]),
                           (-flow[..., 0], -flow[..., 1])):
                wrong_same, _, wrong_within = check(fx, fy)
                assert (~wrong_within[wrong_same]).mean() > 0.05

        # Masks warp the same way (nearest sample): exact where the surface is visible
        # in frame k (flow_valid), except where the nearest pixel centre of the sample
        # falls across an edge of the shape; those are at most a few edge pixels.
        masks_t, masks_k = ms.class_map(meta, t), ms.class_map(meta, k)
        valid = ms.flow_valid(meta, t, k)
        xn = np.clip(np.round(x + flow[..., 0]).astype(int), 0, SPEC.width - 1)
        yn = np.clip(np.round(y + flow[..., 1]).astype(int), 0, SPEC.height - 1)
        agree = masks_k[yn, xn] == masks_t
        assert agree[same].all()
        assert agree[valid].mean() > 0.99


def test_flow_sign_on_a_hand_made_pan():
    """A background moving 2 px right per frame: pixel x of frame t shows what frame
    t - 1 showed at x - 2, so flow_{t->t-1} = (-2, 0) and flow_{t->t+3} = (+6, 0)."""
    meta = {"height": 4, "width": 5, "num_frames": 5, "layers": [
        {"class_id": 0, "polygon": None,
         "affine": [[[1, 0, 2.0 * t], [0, 1, 0]] for t in range(5)],
         "texture": {"base": [100, 100, 100],
                     "waves": [{"k": [0.3, 0.1], "phase": 0.0, "amplitude": [50, 0, 0]}]}},
        # A square object standing still in the middle, in front.
        {"class_id": 1, "polygon": [[1, 1], [-1, 1], [-1, -1], [1, -1]],
         "affine": [[[0.6, 0, 2.0], [0, 0.6, 1.5]]] * 5,
         "texture": {"base": [0, 200, 0], "waves": []}}]}
    flow = ms.flow_between(meta, 2, 1)
    square = ms.layer_map(meta, 2) == 1
    assert square.sum() == 2  # pixel centres (2, 1) and (2, 2)
    np.testing.assert_array_equal(flow[~square], np.tile([-2.0, 0.0], ((~square).sum(), 1)))
    np.testing.assert_array_equal(flow[square], 0.0)
    np.testing.assert_allclose(ms.flow_between(meta, 1, 4)[~square], [[6.0, 0.0]] * 18)
    frame1, frame2 = ms.render_frame(meta, 1), ms.render_frame(meta, 2)
    np.testing.assert_allclose(frame2[0, 3], frame1[0, 1])  # x = 3 at t = 2 is x = 1 at t = 1


def test_every_clip_shows_every_class():
    for k in (2, 4):
        for meta in ms.sample_metas(6, seed=k, spec=ms.SegmentationSpec(num_classes=k)):
            _, masks = ms.render_clip(meta)
            assert sorted(np.unique(masks)) == list(range(k))
            assert meta["class_names"] == ms.class_names(k)


def test_write_and_load(tmp_path):
    small = dict(frames=8, size="64x96", classes=3, progress=False)
    a = generate.write_segmentation(str(tmp_path / "a"), 2, 5, **small)
    b = generate.write_segmentation(str(tmp_path / "b"), 2, 5, **small)
    c = generate.write_segmentation(str(tmp_path / "c"), 2, 6, **small)
    ta, tb, tc = read_tree(a), read_tree(b), read_tree(c)
    assert ta == tb
    assert ta.keys() == tc.keys()
    assert sum(ta[n] != tc[n] for n in ta) > len(ta) // 2
    names = {os.path.relpath(p, "clip_00001") for p in ta if p.startswith("clip_00001")}
    assert names == ({"frames.avi", "meta.json"} | {f"masks/{t:06d}.png" for t in range(8)}
                     | {f"flow/{t:06d}.npy" for t in range(1, 8)})

    clips = ms.list_clips(a)
    assert [os.path.basename(p) for p in clips] == ["clip_00000", "clip_00001"]
    frames, masks, meta = ms.load_segmentation_clip(clips[1])
    want = list(ms.sample_metas(2, 5, ms.SegmentationSpec(64, 96, 8, 3)))[1]
    assert meta == json.loads(json.dumps(want))
    exact_frames, exact_masks = ms.render_clip(meta)
    assert frames.shape == (8, 64, 96, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(masks, exact_masks)
    # MJPEG is lossy; the frames must still be these frames, in RGB order.
    error = np.abs(frames.astype(int) - exact_frames).mean()
    assert error < np.abs(frames.astype(int) - exact_frames[..., ::-1]).mean() / 3
    for t in range(1, 8):
        np.testing.assert_array_equal(ms.load_flow(clips[1], t), ms.flow_between(meta, t, t - 1))
    with pytest.raises(ValueError, match="no previous frame"):
        ms.load_flow(clips[1], 0)
    with pytest.raises(FileNotFoundError, match="meta.json"):
        ms.load_segmentation_clip(str(tmp_path))


def test_bad_input(tmp_path):
    for kwargs, message in (({"classes": 1}, "between 2 and 8"),
                            ({"classes": 9}, "between 2 and 8"),
                            ({"size": 16}, "at least 32 x 32"),
                            ({"frames": 1}, "at least 2 frames"),
                            ({"fmt": "frames"}, "only --format video")):
        with pytest.raises(generate.GenerateError, match=message):
            generate.write_segmentation(str(tmp_path / "x"), 1, 0, progress=False, **kwargs)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(generate.GenerateError, match="not empty"):
        generate.write_segmentation(str(foreign), 1, 0, progress=False)
    # Not a clip-label set: --data=synthetic:segmentation is refused by name.
    assert "segmentation" not in datasets.SYNTHETIC


@pytest.mark.slow
def test_cli(tmp_path):
    out = tmp_path / "cli"
    args = ("--out", out, "--num", 1, "--seed", 3, "--frames", 4, "--size", 32,
            "--classes", 2)
    result = run_module("keras_video.data.generate", "segmentation", *args, timeout=300)
    assert result.returncode == 0, result.stderr
    lib = generate.write_segmentation(str(tmp_path / "lib"), 1, 3, frames=4, size=32,
                                      classes=2, progress=False)
    assert read_tree(str(out)) == read_tree(lib)
    bad = run_module("keras_video.data.generate", "segmentation", "--out", tmp_path / "b",
                     "--num", 1, "--format", "frames", timeout=300)
    assert bad.returncode != 0 and "--format video" in bad.stderr
