"""Every source: frame folders, class folders, CSV, TFDS, and their bad inputs."""

import os
import shutil

import numpy as np
import pytest

from conftest import SEED_CLIPS
from keras_video.data import sources
from keras_video.data.decode import BadSampleError
from keras_video.data.samples import TfdsSource


def test_seed_frame_folders():
    samples = sources.from_spec(SEED_CLIPS)
    assert samples.task == "regression"
    assert [os.path.basename(p) for p in samples.paths] == ["eval_2p549", "sample_1"]
    np.testing.assert_allclose(samples.labels, [2.54909590295262, 1.0], rtol=1e-6)


def test_generated_layouts(oscillation_videos, oscillation_frames):
    videos = sources.from_spec(oscillation_videos)
    frames = sources.from_spec(oscillation_frames)
    assert (len(videos), len(frames)) == (12, 6)
    assert videos.task == frames.task == "regression"
    assert all(p.endswith(".avi") for p in videos.paths)
    assert videos.labels.min() >= 0.5 and videos.labels.max() <= 5.0
    same = sources.from_spec(os.path.join(oscillation_videos, "labels.csv"))
    assert same.paths == videos.paths


def test_class_folders(class_videos):
    samples = sources.from_spec(class_videos)
    assert samples.task == "classification"
    assert samples.class_names == ["blue", "red"]
    assert samples.labels.tolist() == [0, 0, 1, 1, 1]


def test_csv_with_class_names(class_videos, tmp_path):
    csv = tmp_path / "labels.csv"
    rows = [f"{os.path.join(class_videos, 'red', 'red_0.avi')},red",
            f"{os.path.join(class_videos, 'blue', 'blue_1.avi')},blue"]
    csv.write_text("path,label\n" + "\n".join(rows) + "\n")
    samples = sources.from_spec(str(csv))
    assert samples.class_names == ["blue", "red"] and samples.labels.tolist() == [1, 0]


def test_split_is_seeded_and_disjoint(oscillation_videos):
    samples = sources.from_spec(oscillation_videos)
    a, b = samples.split(0.25, seed=1)
    a2, b2 = samples.split(0.25, seed=1)
    assert a.paths == a2.paths and len(b) == 3
    assert not set(a.paths) & set(b.paths)


def _copy_seed(tmp_path):
    root = tmp_path / "clips"
    shutil.copytree(SEED_CLIPS, root, ignore=shutil.ignore_patterns("*.md"))
    return root


@pytest.mark.parametrize("breakage, file, problem", [
    (lambda c: os.remove(c / "label.txt"), "label.txt", "missing label.txt"),
    (lambda c: (c / "label.txt").write_text("fast"), "label.txt", "label is not a number"),
    (lambda c: [os.remove(p) for p in c.glob("*.jpg")], "", "no image files"),
])
def test_bad_clip_folders(tmp_path, breakage, file, problem):
    root = _copy_seed(tmp_path)
    breakage(root / "sample_1")
    with pytest.raises(BadSampleError) as info:
        sources.from_spec(str(root))
    assert info.value.path == str(root / "sample_1" / file).rstrip("/")
    assert problem in info.value.problem
    # skip: the bad clip is logged, counted and left out; the good one stays
    samples = sources.from_spec(str(root), on_bad_sample="skip")
    assert [os.path.basename(p) for p in samples.paths] == ["eval_2p549"]
    assert len(samples.skipped) == 1


def test_missing_and_empty_data_dirs(tmp_path):
    with pytest.raises(BadSampleError, match="does not exist"):
        sources.from_spec(str(tmp_path / "nowhere"))
    with pytest.raises(BadSampleError, match="data folder is empty"):
        sources.from_spec(str(tmp_path))


def test_tfds_source_spec():
    source = sources.from_spec("tfds:ucf101:test")
    assert isinstance(source, TfdsSource)
    assert (source.name, source.split) == ("ucf101", "test")
