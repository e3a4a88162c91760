"""The synthetic video detection set (keras_video.data.vid_synthetic, `generate vid`):
written in ILSVRC2015 VID + DET's layout with Deep Feature Flow's lists, it must read
back through keras_video.data.imagenet_vid exactly as the renderer drew it; its objects
must move at FGFA's three speeds; the command, resuming and bad input."""

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from conftest import run_module
from keras_video.data import generate
from keras_video.data import imagenet_vid as vid
from keras_video.data import moving_shapes
from keras_video.data import vid_synthetic as vs
from tree_utils import read_tree  # noqa: E402

SEED, FRAMES, SIZE = 3, 12, 64
SPEC = vs.VidSpec(height=SIZE, width=SIZE, num_frames=FRAMES)
TINY = dict(num_train_videos=2, num_val_videos=1, seed=SEED, frames=FRAMES, size=SIZE,
            num_det_images=2, progress=False)


@pytest.fixture(scope="module")
def vid_set(tmp_path_factory):
    """2 train videos, 1 val video (12 frames of 64 x 64), 2 DET images."""
    return generate.write_vid(str(tmp_path_factory.mktemp("vid") / "ILSVRC2015"), **TINY)


def lines(root, name):
    with open(os.path.join(root, "ImageSets", name + ".txt")) as f:
        return f.read().splitlines()


def test_layout_and_lists(vid_set):
    train = [generate.vid_name("train", k) for k in range(2)]
    assert train == ["train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000",
                     "train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00001000"]
    assert sorted(os.listdir(os.path.join(vid_set, "Data/VID", train[0]))) == [
        f"{t:06d}.JPEG" for t in range(FRAMES)]
    assert sorted(os.listdir(os.path.join(vid_set, "Annotations/VID", train[1]))) == [
        f"{t:06d}.xml" for t in range(FRAMES)]
    # DFF's forms: a 12-frame video is shorter than 15, so every frame is listed.
    assert lines(vid_set, "VID_train_15frames") == [
        f"{v} 1 {t} {FRAMES}" for v in train for t in range(FRAMES)]
    assert lines(vid_set, "VID_val_videos") == [f"val/ILSVRC2015_val_00000000 1 0 {FRAMES}"]
    assert lines(vid_set, "VID_val_frames") == [
        f"val/ILSVRC2015_val_00000000/{t:06d} {t + 1}" for t in range(FRAMES)]
    assert lines(vid_set, "DET_train_30classes") == [
        f"train/ILSVRC2014_train_0000/ILSVRC2014_train_0000000{k} 1" for k in range(2)]
    assert vid.read_classes(os.path.join(vid_set, "classes.txt")) == vid.WNIDS[:3]
    # Frames are JPEGs of the rendered frames.
    frames, _ = vs.render(SEED, 1, SPEC, "train")
    image = cv2.imread(os.path.join(vid_set, "Data/VID", train[1], "000005.JPEG"))[..., ::-1]
    assert np.abs(image.astype(int) - frames[5]).mean() < 4


def test_train_frame_starts_follow_dff():
    # The first lines of DFF's VID_train_15frames.txt: 300 and 48 frame videos.
    assert generate.train_frame_starts(300) == list(range(10, 300, 20))
    assert generate.train_frame_starts(48)[:5] == [1, 4, 8, 11, 14]
    assert generate.train_frame_starts(13) == list(range(13))
    assert generate.train_frame_starts(15) == list(range(15))


def test_reads_back_as_rendered(vid_set):
    """Every frame's annotation, read by imagenet_vid (clipping refused: the boxes lie in
    the image), equals what the renderer returned."""
    records = vid.read_image_sets(vid_set, "DET_train_30classes+VID_train_15frames",
                                  check_files="video")
    assert [r.subset for r in records] == ["DET"] * 2 + ["VID"] * 2 * FRAMES
    val = vid.read_list(os.path.join(vid_set, "ImageSets/VID_val_videos.txt"),
                        check_files="video")
    videos = {(r.video, r.num_frames): r for r in records[2:] + val}
    assert len(videos) == 3
    for (name, _), record in videos.items():
        split = name.split("/")[0]
        index = int(name[-8:-3])
        frames, objects = vs.render(SEED, index, SPEC, split)
        anns = []
        for t, want in enumerate(objects):
            ann = vid.read_annotation(record.annotation_path(t), max_outside=0)
            assert (ann["width"], ann["height"]) == (SIZE, SIZE)
            np.testing.assert_array_equal(ann["boxes"], want["boxes"])
            for key in ("labels", "track_ids", "occluded"):
                np.testing.assert_array_equal(ann[key], want[key])
            assert not ann["generated"].any()
            anns.append(ann)
        # The annotations' motion IoU is the renderer's objects' motion IoU.
        for mine, theirs in zip(vid.motion_iou(anns)[0], vid.motion_iou(objects)[0]):
            np.testing.assert_allclose(mine, theirs)
    for record in records[:2]:
        image, want = vs.render_det_image(SEED, int(record.video[-8:]), SPEC)
        ann = vid.read_annotation(record.annotation_path(), max_outside=0)
        np.testing.assert_array_equal(ann["boxes"], want["boxes"])
        np.testing.assert_array_equal(ann["labels"], want["labels"])
        assert (ann["track_ids"] == -1).all() and len(ann["labels"]) >= 1


def test_vid_meta_redraws_a_written_video(vid_set, tmp_path):
    """generate.vid_meta gives back the description a written video was rendered from
    (its exact flow is then the ground truth), for train and val names alike."""
    val = vid.read_list(os.path.join(vid_set, "ImageSets/VID_val_videos.txt"))[0]
    train = vid.read_list(os.path.join(vid_set, "ImageSets/VID_train_15frames.txt"))[-1]
    for record, split in ((val, "val"), (train, "train")):
        meta = generate.vid_meta(vid_set, record.video)
        assert meta == vs.video_meta(SEED, int(record.video[-8:-3]), SPEC, split)
        frame = cv2.imread(record.image_path(5))[..., ::-1].astype(float)
        rendered = np.round(moving_shapes.render_frame(meta, 5))
        assert np.abs(rendered - frame).mean() < 4  # JPEG's error only
        other = np.round(moving_shapes.render_frame(vs.video_meta(SEED + 1, 0, SPEC), 5))
        assert np.abs(other - frame).mean() > 10
    with pytest.raises(generate.GenerateError, match="not a video name"):
        generate.vid_meta(vid_set, "val/ILSVRC2015_val_0000x000")
    with pytest.raises(generate.GenerateError, match="no generator arguments"):
        generate.vid_meta(str(tmp_path), val.video)


def test_speeds_occlusion_and_border():
    """A modest set (16 videos of 30 frames, 64 px) holds slow, medium and fast objects
    by FGFA's motion IoU of their annotated boxes, occluded objects, and objects that
    enter or leave the frame."""
    spec = vs.VidSpec(height=64, width=64)
    counts = dict.fromkeys(vid.SPEEDS, 0)
    occluded = partial = 0
    for k in range(16):
        meta = vs.video_meta(0, k, spec)
        frames, objects = vs.render_video(meta)
        assert frames.shape == (30, 64, 64, 3) and frames.dtype == np.uint8
        for speeds in vid.motion_iou(objects)[1]:
            for s in speeds:
                counts[str(s)] += 1
        occluded += sum(int(o["occluded"].sum()) for o in objects)
        for layer in meta["layers"][1:]:
            seen = sum(layer["track_id"] in o["track_ids"] for o in objects)
            partial += 0 < seen < len(objects)
    total = sum(counts.values())
    assert all(n > 0.1 * total for n in counts.values()), counts
    assert occluded > 0 and partial > 0


def test_renderer():
    meta = vs.video_meta(SEED, 0, SPEC)
    assert meta == vs.video_meta(SEED, 0, SPEC)  # a function of (seed, split, index)
    assert meta != vs.video_meta(SEED, 0, SPEC, "val")
    assert meta != vs.video_meta(SEED + 1, 0, SPEC)
    frames, objects = vs.render_video(meta)
    # Pixels are moving_shapes' (its renderer tests every pixel against every layer).
    for t in (0, FRAMES - 1):
        np.testing.assert_array_equal(
            frames[t], np.round(moving_shapes.render_frame(meta, t)).astype(np.uint8))
    # A box is the tight box of the object's visible pixels.
    layer_of = {layer["track_id"]: i for i, layer in enumerate(meta["layers"]) if i}
    for t in (0, FRAMES // 2):
        owner = moving_shapes.layer_map(meta, t)
        for track, box in zip(objects[t]["track_ids"], objects[t]["boxes"]):
            ys, xs = np.nonzero(owner == layer_of[int(track)])
            assert box.tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]
    assert vs.class_wnids(3) == vid.WNIDS[:3]
    assert vs.class_shapes(3) == ("ellipse", "rectangle", "triangle")
    with pytest.raises(ValueError, match="--classes must be between 1 and 7"):
        vs.VidSpec(num_classes=8)


def test_rerun_resumes(vid_set, tmp_path):
    assert generate.write_vid(vid_set, **TINY) == vid_set  # complete: nothing to do
    before = read_tree(vid_set)
    # An interrupted run: the manifest not complete, a video missing, a half-written one.
    copy = str(tmp_path / "copy")
    shutil.copytree(vid_set, copy)
    manifest = os.path.join(copy, generate.MANIFEST)
    with open(manifest) as f:
        state = json.load(f)
    with open(manifest, "w") as f:
        json.dump({**state, "complete": False}, f)
    shutil.rmtree(os.path.join(copy, "Data/VID/val/ILSVRC2015_val_00000000"))
    half = os.path.join(copy, "Data/VID", generate.vid_name("train", 1))
    os.rename(half, half + ".partial")
    os.remove(os.path.join(copy, "Data/DET", generate.vid_name("det", 1) + ".JPEG"))
    os.remove(os.path.join(copy, "ImageSets/VID_val_videos.txt"))
    kept = os.path.join(copy, "Data/VID", generate.vid_name("train", 0), "000003.JPEG")
    stamp = os.stat(kept).st_mtime_ns
    generate.write_vid(copy, **TINY)
    assert read_tree(copy) == before
    assert os.stat(kept).st_mtime_ns == stamp  # a whole video is kept, not rewritten
    with pytest.raises(generate.GenerateError, match="different arguments"):
        generate.write_vid(copy, **{**TINY, "num_det_images": 3})


@pytest.mark.parametrize("kwargs, message", [
    (dict(classes=8), "--classes must be between 1 and 7"),
    (dict(frames=1), "at least 2 frames"),
    (dict(num_val_videos=0), "--num_val must be at least 1"),
    (dict(num_det_images=0), "--num_det must be at least 1"),
    (dict(size="64x"), "--size must be N or HxW"),
    (dict(size=16), "at least 32 x 32"),
])
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(generate.GenerateError, match=message):
        generate.write_vid(str(tmp_path / "x"), **{**TINY, **kwargs})
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_cli(vid_set, tmp_path):
    out = tmp_path / "cli"
    result = run_module("keras_video.data.generate", "vid", "--out", out, "--num", 2,
                        "--num_val", 1, "--num_det", 2, "--seed", SEED, "--frames", FRAMES,
                        "--size", SIZE, timeout=300)
    assert result.returncode == 0, result.stderr
    assert read_tree(str(out)) == read_tree(vid_set)
    bad = run_module("keras_video.data.generate", "vid", "--out", tmp_path / "b",
                     "--format", "frames", timeout=300)
    assert bad.returncode != 0 and "--format does not apply to vid" in bad.stderr
    bad = run_module("keras_video.data.generate", "vid", "--out", tmp_path / "b",
                     "--fmin", 1.0, timeout=300)
    assert bad.returncode != 0 and "--fmin" in bad.stderr
    assert not (tmp_path / "b").exists()
