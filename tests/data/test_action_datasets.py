"""UCF101 / HMDB51 through their official split files: videos and extracted frames, the
group-wise validation hold-out (no source video on two sides), TFDS ucf101 configs, and
clear errors for broken split files."""

import os
import shutil

import keras
import numpy as np
import pytest

from conftest import HMDB51_CLASSES, HMDB51_FILMS, UCF101_CLASSES, UCF101_GROUPS
from keras_video.training import configs
from keras_video.tasks import evaluation
from keras_video.data import action_datasets, datasets, sources
from keras_video.data.decode import BadSampleError
from keras_video.data.samples import Samples, TfdsSource


def _stems(samples):
    return [os.path.splitext(os.path.basename(p))[0].lower() for p in samples.paths]


@pytest.mark.parametrize("split", [1, 2, 3])
def test_ucf101_official_lists(fake_ucf101, split):
    test = sources.from_spec(f"ucf101:{fake_ucf101}:split{split}")  # the test list
    train = sources.from_spec(f"ucf101:{fake_ucf101}:split{split}:train")
    assert test.class_names == train.class_names == list(UCF101_CLASSES)
    assert len(test) == 3 * 2 and len(train) == 3 * (UCF101_GROUPS - 1) * 2
    assert set(test.groups) == {f"g{split:02d}"}
    assert f"g{split:02d}" not in set(train.groups)
    for samples in (test, train):
        assert all(os.path.isfile(p) for p in samples.paths)
        # each clip's label is its class folder's classInd id - 1
        folders = [os.path.basename(os.path.dirname(p)) for p in samples.paths]
        assert [UCF101_CLASSES[i] for i in samples.labels] == folders
    # the lists write HandstandPushups, the files HandStandPushups: found regardless
    assert any("v_HandStandPushups_g" in p for p in test.paths)


def test_extracted_frames_read_like_the_videos(fake_ucf101, fake_ucf101_frames,
                                               fake_hmdb51, fake_hmdb51_frames):
    # the frame tree's own lists, or the video tree's lists given with lists=DIR
    video_lists = os.path.join(fake_ucf101, "ucfTrainTestlist")
    for spec in (f"ucf101:{fake_ucf101_frames}:split2:train",
                 f"ucf101:{fake_ucf101_frames}:split2:train:lists={video_lists}"):
        frames = sources.from_spec(spec)
        videos = sources.from_spec(f"ucf101:{fake_ucf101}:split2:train")
        assert all(os.path.isdir(p) for p in frames.paths)
        assert _stems(frames) == _stems(videos)
        assert frames.labels.tolist() == videos.labels.tolist()
        assert frames.groups == videos.groups
    frames = sources.from_spec(f"hmdb51:{fake_hmdb51_frames}:split3")
    videos = sources.from_spec(f"hmdb51:{fake_hmdb51}:split3")
    assert all(os.path.isdir(p) for p in frames.paths)
    assert _stems(frames) == _stems(videos) and frames.groups == videos.groups


def test_hmdb51_split_files(fake_hmdb51):
    # split N: film N-1 tests, the last film is listed 0 (neither), the others train
    for split in (1, 2, 3):
        test = sources.from_spec(f"hmdb51:{fake_hmdb51}:split{split}:test")
        train = sources.from_spec(f"hmdb51:{fake_hmdb51}:split{split}:train")
        assert test.class_names == train.class_names == sorted(HMDB51_CLASSES)
        assert set(test.groups) == {f"film:{HMDB51_FILMS[split - 1]}"}
        assert set(train.groups) == {f"film:{f}" for i, f in enumerate(HMDB51_FILMS[:-1])
                                     if i != split - 1}
        assert len(test) == 3 * 2 and len(train) == 3 * 2 * 2
        assert not any(HMDB51_FILMS[-1] in p for p in test.paths + train.paths)
        folders = [os.path.basename(os.path.dirname(p)) for p in train.paths]
        assert [HMDB51_CLASSES[i] for i in train.labels] == folders


def _assert_no_group_on_two_sides(splits):
    sides = [set(s.groups) for s in (splits.train, splits.val, splits.test)]
    assert not (sides[0] & sides[1]) and not (sides[0] & sides[2])
    assert not (sides[1] & sides[2])
    paths = [set(s.paths) for s in (splits.train, splits.val, splits.test)]
    assert not (paths[0] & paths[1]) and not (paths[0] & paths[2])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_validation_holds_out_whole_groups(fake_ucf101, fake_hmdb51, tmp_path, seed):
    config = configs.make_config("", dict(data=f"ucf101:{fake_ucf101}", split=2,
                                          holdout_fraction=0.3, seed=seed))
    splits = datasets.load_splits(config.data, config.runtime.seed, str(tmp_path))
    _assert_no_group_on_two_sides(splits)
    official_train = sources.from_spec(f"ucf101:{fake_ucf101}:split2:train")
    assert sorted(splits.train.paths + splits.val.paths) == sorted(official_train.paths)
    assert set(splits.test.groups) == {"g02"}
    # UCF101 groups count across classes: the hold-out has every class
    assert sorted(set(splits.val.labels.tolist())) == [0, 1, 2]
    assert splits.test_spec == f"ucf101:{fake_ucf101}:split2:test"
    assert sources.from_spec(splits.test_spec).paths == splits.test.paths  # evaluate's

    config = configs.make_config("", dict(data=f"hmdb51:{fake_hmdb51}:split1",
                                          holdout_fraction=0.4, seed=seed))
    splits = datasets.load_splits(config.data, config.runtime.seed, str(tmp_path))
    _assert_no_group_on_two_sides(splits)
    assert len(set(splits.val.groups)) == 1 and splits.num_classes == 3

    # UCF101 clips in plain class folders (no split files): the held-out test and
    # validation clips are still whole groups
    plain = tmp_path / "plain"
    plain.mkdir()
    for name in UCF101_CLASSES:
        os.symlink(os.path.join(fake_ucf101, name), plain / name)
    config = configs.make_config("", dict(data=str(plain), holdout_fraction=0.25,
                                          seed=seed))
    splits = datasets.load_splits(config.data, config.runtime.seed, str(tmp_path))
    _assert_no_group_on_two_sides(splits)
    assert all(len(s) for s in (splits.train, splits.val, splits.test))


def test_group_split_is_seeded():
    samples = Samples([f"c{i}" for i in range(10)], np.zeros(10, np.int64),
                              "classification", ["a"], groups=list("aabbbccdde"))
    train, held = samples.split(0.4, seed=5)
    again, _ = samples.split(0.4, seed=5)
    assert train.paths == again.paths
    assert len(set(held.groups)) == 2 and not set(held.groups) & set(train.groups)
    with pytest.raises(ValueError, match="1 group"):
        Samples(["a", "b"], np.zeros(2), "regression", groups=["g", "g"]).split(
            0.5, 0)


def test_spec_round_trip_and_conflicts(fake_ucf101, class_videos, tmp_path):
    spec = action_datasets.parse_spec("ucf101:/data/UCF-101:split3:test:lists=/data/lists")
    assert (spec.root, spec.split, spec.subset, spec.lists) == (
        "/data/UCF-101", 3, "test", "/data/lists")
    assert str(spec) == "ucf101:/data/UCF-101:split3:test:lists=/data/lists"
    with pytest.raises(ValueError, match="unknown option 'fold2'"):
        action_datasets.parse_spec("ucf101:/x:fold2")
    with pytest.raises(ValueError, match="official splits 1, 2 and 3"):
        action_datasets.parse_spec("hmdb51:/x:split4")
    for overrides, message in (
            (dict(data=f"ucf101:{fake_ucf101}:split1", split=2), "names split 1"),
            (dict(data=f"ucf101:{fake_ucf101}:test"), "leave ':test' out"),
            (dict(data=class_videos, split=2), "--split picks an official split")):
        with pytest.raises(ValueError, match=message):
            config = configs.make_config("", overrides)
            datasets.load_splits(config.data, config.runtime.seed, str(tmp_path))
    with pytest.raises(BadSampleError, match=f"read it with its official splits as "
                       f"--data=ucf101:{fake_ucf101}$"):
        sources.from_spec(fake_ucf101)


def _ucf_lists(fake_ucf101, tmp_path):
    lists = tmp_path / "lists"
    shutil.copytree(os.path.join(fake_ucf101, "ucfTrainTestlist"), lists)
    return lists


def _append(path, line):
    with open(path, "a") as f:
        f.write(line + "\r\n")
    return sum(1 for _ in open(path))


def test_broken_ucf101_lists_name_the_file_and_line(fake_ucf101, tmp_path):
    lists = _ucf_lists(fake_ucf101, tmp_path)
    spec = f"ucf101:{fake_ucf101}:split1:train:lists={lists}"
    train = lists / "trainlist01.txt"
    line = _append(train, "Basketball/v_Basketball_g09_c01.avi 2")
    with pytest.raises(BadSampleError) as info:
        sources.from_spec(spec)
    assert info.value.path == str(train)
    assert info.value.problem.startswith(
        f"line {line}: Basketball/v_Basketball_g09_c01.avi is not on disk: no video file "
        "or frame folder 'v_Basketball_g09_c01'")
    skipped = sources.from_spec(spec, on_bad_sample="skip")  # logged, counted, left out
    assert len(skipped) == 18 and len(skipped.skipped) == 1

    for bad, problem in (("Juggling/v_Juggling_g02_c01.avi 4",
                          "unknown class 'Juggling' (not in classInd.txt)"),
                         ("Basketball/v_Basketball_g02_c01.avi 3",
                          "class id 3, but classInd.txt gives Basketball id 2"),
                         ("v_Basketball_g02_c01.avi", "expected '<Class>/<video> <id>'")):
        shutil.copy(os.path.join(fake_ucf101, "ucfTrainTestlist", "trainlist01.txt"), train)
        line = _append(train, bad)
        with pytest.raises(BadSampleError) as info:
            sources.from_spec(spec)
        assert info.value.path == str(train)
        assert info.value.problem.startswith(f"line {line}: {problem}")

    os.remove(lists / "testlist01.txt")
    with pytest.raises(BadSampleError) as info:
        sources.from_spec(f"ucf101:{fake_ucf101}:lists={lists}")
    assert (info.value.path, info.value.problem) == (str(lists / "testlist01.txt"),
                                                     "split file does not exist")
    with pytest.raises(BadSampleError, match="classInd.txt: split file does not exist"):
        sources.from_spec(f"ucf101:{fake_ucf101}:lists={tmp_path}")


def test_broken_hmdb51_split_files(fake_hmdb51, tmp_path):
    lists = tmp_path / "splits"
    shutil.copytree(os.path.join(fake_hmdb51, "testTrainMulti_7030_splits"), lists)
    spec = f"hmdb51:{fake_hmdb51}:split2:lists={lists}"
    os.remove(lists / "climb_test_split2.txt")
    with pytest.raises(BadSampleError) as info:
        sources.from_spec(spec)
    assert info.value.path == str(lists / "climb_test_split2.txt")
    assert info.value.problem.startswith("split file does not exist")
    shutil.copy(lists / "climb_test_split1.txt", lists / "climb_test_split2.txt")
    wave = lists / "wave_test_split2.txt"
    line = _append(wave, "Lost_Film_wave_u_nm_np1_fr_goo_0.avi 2")
    with pytest.raises(BadSampleError, match=f"line {line}: wave/Lost_Film_wave_u_nm_np1_fr_"
                       "goo_0.avi is not on disk") as info:
        sources.from_spec(spec)
    assert info.value.path == str(wave)
    skipped = sources.from_spec(spec, on_bad_sample="skip")
    assert len(skipped) == 6 and [e.path for e in skipped.skipped] == [str(wave)]
    shutil.copy(os.path.join(fake_hmdb51, "testTrainMulti_7030_splits", wave.name), wave)
    line = _append(wave, "Another_wave_clip.avi 7")
    with pytest.raises(BadSampleError, match=f"line {line}: expected '<video> <0, 1 or 2>'"):
        sources.from_spec(spec)
    with pytest.raises(BadSampleError, match="split-file folder does not exist"):
        sources.from_spec(f"hmdb51:{fake_hmdb51}:lists={tmp_path / 'nowhere'}")


def test_tfds_ucf101_split_configs(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    from keras_video.data.pipeline import ClipSpec, make_dataset

    assert TfdsSource("ucf101").with_official_split(2).name == "ucf101/ucf101_2"
    same = TfdsSource("ucf101/ucf101_1_256")
    assert same.with_official_split(1) is same
    with pytest.raises(ValueError, match="is not official split 2"):
        same.with_official_split(2)
    with pytest.raises(ValueError, match="has none"):
        TfdsSource("kinetics400").with_official_split(1)
    config = configs.make_config("", dict(data="tfds:ucf101", split=3))
    with tfds.testing.mock_data(num_examples=3, policy=tfds.testing.MockPolicy.USE_CODE):
        splits = datasets.load_splits(config.data, config.runtime.seed, str(tmp_path))
        assert splits.train.builder().builder_config.split_number == 3
        assert (splits.train.split, splits.val.split, splits.test.split) == (
            "train[:90%]", "train[90%:]", "test")
        assert splits.num_classes == 101
        assert splits.test_spec == "tfds:ucf101/ucf101_3:test"
        assert sources.from_spec(splits.test_spec) == splits.test  # evaluate's
        clip = ClipSpec(8, (32, 32), "random", resize=(40, 48), crop="multiscale_corner",
                        flip=True)
        x, y = next(iter(make_dataset(splits.train, clip, 3, training=True)))
        lengths = [len(video) for video, _ in splits.test.load()[0]]
        inputs = keras.Input(clip.shape)
        model = keras.Model(inputs, keras.layers.Dense(101, activation="softmax")(
            keras.layers.GlobalAveragePooling3D()(inputs)))
        labels, scores, clips = evaluation.video_scores(model, splits.test, clip)
    assert x.shape == (3, 8, 32, 32, 3) and y.dtype == np.int64
    assert scores.shape == (3, 101) and labels.dtype == np.int64
    assert clips.tolist() == [-(-n // 8) for n in lengths]
