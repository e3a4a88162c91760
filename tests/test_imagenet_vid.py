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
