"""The ImageNet VID / DET list and annotation reader, on a tiny fake data set tree laid
out like ILSVRC2015 (lines copied in form from Deep Feature Flow's ImageSets)."""

import os

import numpy as np
import pytest

from keras_video.data import imagenet_vid as vid

VIDEO = "train/ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000"
IMAGE = "train/ILSVRC2014_train_0000/ILSVRC2014_train_00000663"
AIRPLANE, LIZARD = "n02691156", "n01674464"  # VID classes 1 and 17
PERSON = "n00007846"  # a DET class that is not a VID class


def object_xml(name, box, trackid=None, occluded=0):
    track = "" if trackid is None else f"<trackid>{trackid}</trackid>"
    xmin, ymin, xmax, ymax = box
    return (f"<object>{track}<name>{name}</name><bndbox><xmax>{xmax}</xmax>"
            f"<xmin>{xmin}</xmin><ymax>{ymax}</ymax><ymin>{ymin}</ymin></bndbox>"
            f"<occluded>{occluded}</occluded><generated>0</generated></object>")


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "ILSVRC2015"
    for j in range(5):  # a 5-frame video; the lizard enters at frame 2
        write(str(root / "Data/VID" / VIDEO / f"{j:06d}.JPEG"), "jpeg")
        objects = object_xml(AIRPLANE, (10 + j, 20, 110 + j, 80), trackid=0)
        if j >= 2:
            objects += object_xml(LIZARD, (-5, 30, 200, 70), trackid=3, occluded=1)
        write(str(root / "Annotations/VID" / VIDEO / f"{j:06d}.xml"),
              f"<annotation><folder>{VIDEO}</folder><filename>{j:06d}</filename>"
              f"<size><width>160</width><height>90</height></size>{objects}</annotation>")
    write(str(root / "Data/DET" / (IMAGE + ".JPEG")), "jpeg")
    write(str(root / "Annotations/DET" / (IMAGE + ".xml")),
          "<annotation><size><width>64</width><height>48</height></size>"
          + object_xml(PERSON, (1, 2, 3, 4)) + object_xml(LIZARD, (5, 6, 40, 30))
          + "</annotation>")
    write(str(root / "ImageSets/VID_train_15frames.txt"),
          f"{VIDEO} 1 0 5\n{VIDEO} 1 3 5\n")
    write(str(root / "ImageSets/DET_train_30classes.txt"), f"{IMAGE} 1\n\n")
    return root


def test_vid_list(tree):
    records = vid.read_list(tree / "ImageSets/VID_train_15frames.txt")
    assert [(r.video, r.frame_id, r.frame_index, r.num_frames) for r in records] == [
        (VIDEO, 1, 0, 5), (VIDEO, 1, 3, 5)]
    second = records[1]
    assert second.subset == "VID" and second.is_video
    assert second.image_path() == os.path.join(str(tree), "Data", "VID", VIDEO, "000003.JPEG")
    assert second.annotation_path() == os.path.join(str(tree), "Annotations", "VID", VIDEO,
                                                    "000003.xml")
    # A key frame of the same video, e.g. for DFF's current / key pairs.
    assert second.image_path(1).endswith(os.path.join(VIDEO, "000001.JPEG"))
    with pytest.raises(IndexError, match="outside the video's 5 frames"):
        second.image_path(5)
    assert second.source.endswith("VID_train_15frames.txt:2")


def test_vid_annotation(tree):
    record = vid.read_list(tree / "ImageSets/VID_train_15frames.txt")[1]
    ann = vid.read_annotation(record.annotation_path())
    assert (ann["width"], ann["height"]) == (160, 90)
    # The lizard's box is clipped to the image: xmin -5 -> 0, xmax 200 -> 159.
    np.testing.assert_array_equal(ann["boxes"], [[13, 20, 113, 80], [0, 30, 159, 70]])
    assert ann["boxes"].dtype == np.float32
    np.testing.assert_array_equal(ann["labels"], [1, 17])
    assert [vid.CLASS_NAMES[i - 1] for i in ann["labels"]] == ["airplane", "lizard"]
    assert ann["wnids"] == [AIRPLANE, LIZARD]
    np.testing.assert_array_equal(ann["track_ids"], [0, 3])
    np.testing.assert_array_equal(ann["occluded"], [False, True])
    first = vid.read_annotation(record.annotation_path(0))
    np.testing.assert_array_equal(first["track_ids"], [0])


def test_det_list_and_annotation(tree):
    (record,) = vid.read_list(tree / "ImageSets/DET_train_30classes.txt")
    assert record.subset == "DET" and not record.is_video
    assert (record.frame_index, record.num_frames) == (0, 1)
    assert record.image_path() == os.path.join(str(tree), "Data", "DET", IMAGE + ".JPEG")
    ann = vid.read_annotation(record.annotation_path())
    # The person is not a VID class and is dropped; DET objects have no track id.
    np.testing.assert_array_equal(ann["labels"], [17])
    np.testing.assert_array_equal(ann["track_ids"], [-1])
    np.testing.assert_array_equal(ann["boxes"], [[5, 6, 40, 30]])
    empty = vid.read_annotation(record.annotation_path(), wnids=(AIRPLANE,))
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)


@pytest.mark.parametrize("line, message", [
    (f"{VIDEO} 1 3", r"VID_bad.txt:2: expected 2 columns"),
    (f"{VIDEO} 1 three 5", r"VID_bad.txt:2: columns after the path must be integers"),
    (f"{VIDEO} 1 5 5", r"VID_bad.txt:2: need 0 <= START < NUM_FRAMES"),
    (f"{VIDEO} 1 -1 5", r"VID_bad.txt:2: need 0 <= START < NUM_FRAMES"),
])
def test_malformed_lines_name_file_and_line(tree, line, message):
    path = tree / "ImageSets/VID_bad.txt"
    write(str(path), f"{VIDEO} 1 0 5\n{line}\n")
    with pytest.raises(vid.VidFormatError, match=message):
        vid.read_list(path)


def test_missing_files_and_bad_names(tree):
    path = tree / "ImageSets/VID_missing.txt"
    write(str(path), f"{VIDEO} 1 0 5\n{VIDEO}_gone 1 0 5\n")
    with pytest.raises(FileNotFoundError, match=r"VID_missing.txt:2: .*_gone.*000000.JPEG"):
        vid.read_list(path)
    assert len(vid.read_list(path, check_files=False)) == 2
    os.remove(tree / "Annotations/VID" / VIDEO / "000003.xml")
    with pytest.raises(FileNotFoundError, match=r"VID_train_15frames.txt:2: .*000003.xml"):
        vid.read_list(tree / "ImageSets/VID_train_15frames.txt")
    with pytest.raises(FileNotFoundError, match="list file does not exist"):
        vid.read_list(tree / "ImageSets/VID_none.txt")
    other = tree / "ImageSets/train.txt"
    write(str(other), f"{VIDEO} 1 0 5\n")
    with pytest.raises(vid.VidFormatError, match="cannot tell the subset"):
        vid.read_list(other)
    assert vid.read_list(other, subset="VID")[0].subset == "VID"
    write(str(tree / "ImageSets/VID_empty.txt"), "\n")
    with pytest.raises(vid.VidFormatError, match="holds no records"):
        vid.read_list(tree / "ImageSets/VID_empty.txt")


@pytest.mark.parametrize("text, message", [
    ("<annotation><size><width>9</width>", "not valid XML"),
    ("<annotation></annotation>", "no <size>"),
    ("<annotation><size><width>9</width><height>x</height></size></annotation>",
     r"<size> <height> is not a number"),
    ("<annotation><size><width>9</width><height>9</height></size><object><name>"
     f"{AIRPLANE}</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax></bndbox>"
     "</object></annotation>", "object 0 has no <ymax>"),
    ("<annotation><size><width>9</width><height>9</height></size><object><name>"
     f"{AIRPLANE}</name></object></annotation>", "object 0 has no <bndbox>"),
])
def test_malformed_annotations_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(vid.VidFormatError, match=rf"bad.xml: .*{message}"):
        vid.read_annotation(path)


def test_box_errors_name_file_and_object(tmp_path):
    def annotation(box, trackid=7):
        path = tmp_path / "bad.xml"
        path.write_text("<annotation><size><width>9</width><height>9</height></size>"
                        + object_xml(AIRPLANE, box, trackid=trackid) + "</annotation>")
        return path

    with pytest.raises(vid.VidFormatError, match=r"bad.xml: object 0 \(n02691156, trackid "
                       r"7\) has an empty box \(5, 1, 4, 3\): xmax < xmin"):
        vid.read_annotation(annotation((5, 1, 4, 3)))
    with pytest.raises(vid.VidFormatError, match=r"bad.xml: object 0 \(n02691156\) has an "
                       r"empty box \(10, 1, 12, 3\): it lies wholly outside the 9 x 9"):
        vid.read_annotation(annotation((10, 1, 12, 3), trackid=None))
    # Past the border: clipped as DFF does, or refused beyond max_outside pixels.
    np.testing.assert_array_equal(vid.read_annotation(annotation((-3, 1, 12, 9)))["boxes"],
                                  [[0, 1, 8, 8]])
    ok = vid.read_annotation(annotation((-1, 0, 9, 9)), max_outside=1)  # xmax = width
    np.testing.assert_array_equal(ok["boxes"], [[0, 0, 8, 8]])
    with pytest.raises(vid.VidFormatError, match=r"bad.xml: object 0 \(n02691156, trackid "
                       r"7\) box \(0, 0, 11, 8\) reaches more than 1 px past the 9 x 9"):
        vid.read_annotation(annotation((0, 0, 11, 8)), max_outside=1)


def test_read_classes(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# my classes\nAirplane\n\nn00007846   # person: a DET class\n"
                    f"  {LIZARD}\ndomestic_cat\n")
    classes = vid.read_classes(path)
    assert classes == (AIRPLANE, PERSON, LIZARD, "n02121808")
    # With these classes the DET image's person is kept: label 2, the second line's.
    det = os.path.join(os.path.dirname(str(path)), "det.xml")
    write(det, "<annotation><size><width>64</width><height>48</height></size>"
          + object_xml(PERSON, (1, 2, 3, 4)) + object_xml("n02958343", (5, 6, 7, 8))
          + "</annotation>")
    ann = vid.read_annotation(det, wnids=classes)
    np.testing.assert_array_equal(ann["labels"], [2])


@pytest.mark.parametrize("text, message", [
    ("airplane\n\nunicorn\n", r"classes.txt:3: unknown class 'unicorn'"),
    ("airplane\nn0000784\n", r"classes.txt:2: unknown class 'n0000784'"),
    ("airplane lizard\n", r"classes.txt:1: one class per line"),
    (f"airplane\n{AIRPLANE}\n", r"classes.txt:2: class 'n02691156' \(n02691156\) is "
                                r"already on line 1"),
    ("# nothing\n\n", r"classes.txt: names no classes"),
])
def test_read_classes_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "classes.txt"
    path.write_text(text)
    with pytest.raises(vid.VidFormatError, match=message):
        vid.read_classes(path)
    with pytest.raises(FileNotFoundError, match="none.txt: classes file does not exist"):
        vid.read_classes(tmp_path / "none.txt")


def test_read_image_sets(tree):
    records = vid.read_image_sets(tree, "DET_train_30classes+VID_train_15frames")
    assert [(r.subset, r.video, r.frame_index) for r in records] == [
        ("DET", IMAGE, 0), ("VID", VIDEO, 0), ("VID", VIDEO, 3)]
    assert records[0].source.endswith("DET_train_30classes.txt:1")
    with pytest.raises(FileNotFoundError, match=r"VID_none.txt: list file does not exist"):
        vid.read_image_sets(tree, "DET_train_30classes+VID_none")
    with pytest.raises(ValueError, match="an empty name"):
        vid.read_image_sets(tree, "DET_train_30classes+")


def test_missing_key_frame_names_list_line(tree):
    # Frame 1 is no record's START: the default check (each record's own frame) passes,
    # check_files="video" (every frame a key frame may be) names the list line.
    os.remove(tree / "Data/VID" / VIDEO / "000001.JPEG")
    path = tree / "ImageSets/VID_train_15frames.txt"
    assert len(vid.read_list(path)) == 2
    with pytest.raises(FileNotFoundError, match=r"VID_train_15frames.txt:1: .*"
                       r"000001.JPEG does not exist \(frame 1 of the video's 5\)"):
        vid.read_list(path, check_files="video")
    with pytest.raises(FileNotFoundError, match=r"VID_train_15frames.txt:1: .*000001.JPEG"):
        vid.read_image_sets(tree, "VID_train_15frames", check_files="video")
    with pytest.raises(ValueError, match="check_files must be"):
        vid.read_list(path, check_files="all")


def test_training_pairs():
    rng = np.random.default_rng(0)

    def record(start, length, is_video=True):
        return vid.VidRecord("root", "VID", VIDEO, 1, start, length, is_video, "list:1")

    # DFF: key = current + randint(-9, 0), clipped to the video.
    keys = {vid.training_pairs(record(10, 300), rng)[1] for _ in range(400)}
    assert keys == set(range(1, 11))
    keys = {vid.training_pairs(record(3, 5), rng)[1] for _ in range(200)}
    assert keys == {0, 1, 2, 3}
    assert {vid.training_pairs(record(0, 5), rng) for _ in range(20)} == {(0, 0)}
    assert {vid.training_pairs(record(4, 5), rng, key_range=0) for _ in range(5)} == {(4, 4)}
    image = vid.VidRecord("root", "DET", IMAGE, 1, 0, 1, False, "list:1")
    assert vid.training_pairs(image, rng) == (0, 0)


def ann(*objects):
    """A read_annotation-like dict of (track id, box) pairs."""
    return {"track_ids": np.array([t for t, _ in objects], np.int64),
            "boxes": np.array([b for _, b in objects], np.float32).reshape(-1, 4)}


def test_box_iou_has_the_plus_one_convention():
    # 10 x 10 pixel boxes overlapping by 5 columns: 50 / (100 + 100 - 50).
    assert vid.box_iou((0, 0, 9, 9), (5, 0, 14, 9)) == pytest.approx(1 / 3)
    assert vid.box_iou((0, 0, 9, 9), (10, 0, 19, 9)) == 0.0
    np.testing.assert_allclose(vid.box_iou([[0, 0, 9, 9]], [[0, 0, 9, 9], [0, 0, 4, 9]]),
                               [1.0, 0.5])


def test_motion_iou_and_speeds():
    still, step = (0, 0, 9, 9), lambda t: (5 * t, 0, 5 * t + 9, 9)
    frames = [ann((0, still), (1, step(0)), (2, (20, 20, 29, 29))),
              ann((1, step(1)), (0, still)),
              ann((0, still), (1, step(2)))]
    ious, speeds = vid.motion_iou(frames)
    # Track 1 moves 5 px a frame: IoU 1/3 with the next frame, 0 two frames on.
    np.testing.assert_allclose(ious[0], [1.0, 1 / 6, 0.0])  # track 2: alone, so 0
    np.testing.assert_allclose(ious[1], [1 / 3, 1.0])  # in the frame's object order
    np.testing.assert_allclose(ious[2], [1.0, 1 / 6])
    assert speeds[0].tolist() == ["slow", "fast", "fast"]
    assert speeds[1].tolist() == ["fast", "slow"]
    # Only frames within +-10 count: 11 frames apart, the two boxes have no neighbour.
    far = [ann((0, still))] + [ann() for _ in range(10)] + [ann((0, (0, 0, 9, 4)))]
    ious, _ = vid.motion_iou(far)
    assert ious[0].tolist() == [0.0] and ious[-1].tolist() == [0.0]
    ious, _ = vid.motion_iou(far, window=11)
    np.testing.assert_allclose([ious[0][0], ious[-1][0]], [0.5, 0.5])
    assert vid.speed_of([0.95, 0.9, 0.8, 0.7, 0.69]).tolist() == [
        "slow", "medium", "medium", "medium", "fast"]
    with pytest.raises(ValueError, match="frame 0: an object has no track id"):
        vid.motion_iou([ann((-1, still))])
    with pytest.raises(ValueError, match="frame 1: two objects share a track id"):
        vid.motion_iou([ann(), ann((3, still), (3, still))])
