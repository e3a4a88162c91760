"""Shared fixtures: small data sets the project generates itself, and the test videos."""

import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The suite runs TensorFlow with the CPU kernels the commands choose (before anything
# imports TensorFlow); TF_ENABLE_ONEDNN_OPTS=0 or 1 in the environment overrides it.
from keras_video import runtime  # noqa: E402

runtime.configure()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS)
VIDEOS = os.path.join(TESTS, "fixtures", "videos")
SEED_CLIPS = os.path.join(TESTS, "fixtures", "seed_clips")


def run_module(module, *args, timeout=600, env=None):
    """Runs `python -m module args` in a fresh process; returns CompletedProcess."""
    full_env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2",
                **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def write_video(path, frames_rgb, fps=15, fourcc="MJPG"):
    h, w = frames_rgb.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), path
    for frame in frames_rgb:
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return str(path)


@pytest.fixture(scope="session")
def oscillation_videos(tmp_path_factory):
    """12 oscillation clips as MJPG videos + labels.csv."""
    from keras_video.data import generate

    out = tmp_path_factory.mktemp("osc_videos")
    return generate.write_oscillation(str(out / "set"), 12, seed=3, fmt="video",
                                      progress=False)


@pytest.fixture(scope="session")
def oscillation_frames(tmp_path_factory):
    """6 oscillation clips in the seed's frame-folder layout."""
    from keras_video.data import generate

    out = tmp_path_factory.mktemp("osc_frames")
    return generate.write_oscillation(str(out / "set"), 6, seed=4, fmt="frames",
                                      progress=False)


def moving_texture(shift, frames=3, size=64, seed=0):
    """RGB frames uint8 [frames, size, size, 3] of a smooth random texture moving by
    `shift` (dx, dy) px a frame (np.roll: it wraps at the borders)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (size // 4, size // 4, 3)).astype(np.float32)
    texture = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    dx, dy = shift
    return np.stack([np.roll(texture, (t * dy, t * dx), axis=(0, 1))
                     for t in range(frames)]).clip(0, 255).astype(np.uint8)


def _color_clip(color, num_frames=8, size=(24, 32)):
    clip = np.zeros((num_frames, *size, 3), np.uint8)
    clip[...] = color
    # a moving bright square so frames differ
    for t in range(num_frames):
        clip[t, 2:8, t:t + 6] = 255
    return clip


@pytest.fixture(scope="session")
def class_videos(tmp_path_factory):
    """Class sub-folders of videos: red/ (3 clips) and blue/ (2 clips)."""
    root = tmp_path_factory.mktemp("classes")
    for name, color, count in (("red", (200, 20, 20), 3), ("blue", (20, 20, 200), 2)):
        os.makedirs(root / name)
        for i in range(count):
            write_video(root / name / f"{name}_{i}.avi", _color_clip(color, 8 + i))
    return str(root)


# Fake UCF101 / HMDB51 trees: the real layouts and split files, tiny MJPG videos. Each
# class has its own dominant colour (red, green, blue in class-id order), so a model
# reading the mean colour classifies them all.
ACTION_COLORS = ((190, 50, 40), (40, 180, 50), (50, 40, 190))
UCF101_CLASSES = ("ApplyEyeMakeup", "Basketball", "HandstandPushups")
UCF101_GROUPS = 4  # test group of split N: gN (the real split N tests 7 groups)
HMDB51_CLASSES = ("brush_hair", "climb", "wave")
HMDB51_FILMS = ("April_09", "Aussie_Film", "Rock_Show", "Veggie_Tales")


def _action_video(label, seed):
    """20-40 frames of 32x40: the class colour, a moving square, per-video noise."""
    rng = np.random.default_rng(seed)
    num_frames = int(rng.integers(20, 41))
    frames = np.empty((num_frames, 32, 40, 3), np.uint8)
    frames[...] = ACTION_COLORS[label]
    frames += rng.integers(0, 20, (1, 32, 40, 3), dtype=np.uint8)
    for t in range(num_frames):
        x = t % 30
        frames[t, 10:18, x:x + 8] = 240
    return frames


def _write_action_clip(path, frames, as_frames):
    if as_frames:
        os.makedirs(path)
        for t, frame in enumerate(frames, start=1):
            cv2.imwrite(os.path.join(path, f"image_{t:05d}.jpg"), frame[..., ::-1])
    else:
        write_video(path + ".avi", frames)


def _write_ucf101(root, as_frames):
    """root/<Class>/v_<Class>_gGG_cCC(.avi | /) and root/ucfTrainTestlist."""
    lists = os.path.join(root, "ucfTrainTestlist")
    os.makedirs(lists)
    entries = []  # (class id, class, listed name)
    for label, name in enumerate(UCF101_CLASSES):
        # On disk 'HandStandPushups' in the file names, as in the real archive, while
        # the lists below write 'HandstandPushups': finding them must ignore case.
        disk_name = "HandStandPushups" if name == "HandstandPushups" else name
        for group in range(1, UCF101_GROUPS + 1):
            for clip in (1, 2):
                stem = f"v_{disk_name}_g{group:02d}_c{clip:02d}"
                os.makedirs(os.path.join(root, name), exist_ok=True)
                _write_action_clip(os.path.join(root, name, stem),
                                   _action_video(label, 100 * label + 10 * group + clip),
                                   as_frames)
                entries.append((label + 1, name, f"v_{name}_g{group:02d}_c{clip:02d}.avi",
                                group))
    with open(os.path.join(lists, "classInd.txt"), "w") as f:
        f.writelines(f"{i} {name}\r\n" for i, name in enumerate(UCF101_CLASSES, start=1))
    for split in (1, 2, 3):
        with open(os.path.join(lists, f"trainlist{split:02d}.txt"), "w") as f:
            f.writelines(f"{name}/{video} {i}\r\n" for i, name, video, group in entries
                         if group != split)
        with open(os.path.join(lists, f"testlist{split:02d}.txt"), "w") as f:
            f.writelines(f"{name}/{video}\r\n" for i, name, video, group in entries
                         if group == split)
    return str(root)


def _write_hmdb51(root, as_frames):
    """root/<class>/<film>_<class>_u_nm_np1_fr_goo_<i>(.avi | /) and
    root/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt: for split N, film
    N - 1 is the test film, the last film is unused (id 0), the others train."""
    lists = os.path.join(root, "testTrainMulti_7030_splits")
    os.makedirs(lists)
    for label, name in enumerate(HMDB51_CLASSES):
        os.makedirs(os.path.join(root, name))
        videos = []
        for f, film in enumerate(HMDB51_FILMS):
            for i in (0, 1):
                stem = f"{film}_{name}_u_nm_np1_fr_goo_{i}"
                _write_action_clip(os.path.join(root, name, stem),
                                   _action_video(label, 1000 + 100 * label + 10 * f + i),
                                   as_frames)
                videos.append((f, stem + ".avi"))
        for split in (1, 2, 3):
            with open(os.path.join(lists, f"{name}_test_split{split}.txt"), "w") as out:
                for f, video in videos:
                    role = 0 if f == len(HMDB51_FILMS) - 1 else 2 if f == split - 1 else 1
                    out.write(f"{video} {role} \n")
    return str(root)


@pytest.fixture(scope="session")
def fake_ucf101(tmp_path_factory):
    """A UCF101 tree (3 classes x 4 groups x 2 clips of MJPG video, split lists for
    splits 1-3 testing group N); returns its root."""
    return _write_ucf101(tmp_path_factory.mktemp("ucf101") / "UCF-101", as_frames=False)


@pytest.fixture(scope="session")
def fake_ucf101_frames(tmp_path_factory):
    """fake_ucf101 with its frames extracted to folders of JPEGs (the same videos)."""
    return _write_ucf101(tmp_path_factory.mktemp("ucf101_jpg") / "UCF-101", as_frames=True)


@pytest.fixture(scope="session")
def fake_hmdb51(tmp_path_factory):
    """An HMDB51 tree (3 classes x 4 films x 2 clips of MJPG video, split files)."""
    return _write_hmdb51(tmp_path_factory.mktemp("hmdb51") / "hmdb51", as_frames=False)


@pytest.fixture(scope="session")
def fake_hmdb51_frames(tmp_path_factory):
    """fake_hmdb51 with its frames extracted to folders of JPEGs."""
    return _write_hmdb51(tmp_path_factory.mktemp("hmdb51_jpg") / "hmdb51", as_frames=True)


def perturbed_dff(model, seed=1):
    """A copy of a small `dff` model as if after some training: flow and scale heads off
    their zero initialisation (warping and scaling change the features), and larger
    feature and classifier weights (confident, not uniform, class probabilities), so that equality
    tests compare outputs that really vary."""
    import keras
    from keras_video.models.dff import dff_parts

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    rng = np.random.default_rng(seed)
    n_feat, n_flow, n_task = dff_parts(copy)
    for layer, std in ((n_flow.get_layer("predict_flow"), 0.3),
                       (n_flow.get_layer("scale_conv"), 0.05),
                       (n_feat.get_layer("feat_conv_3x3"), None),
                       (n_task.get_layer("classifier"), 3.0)):
        shape = layer.kernel.shape
        std = std or 4 / np.sqrt(np.prod(shape[:3]))
        layer.kernel.assign(rng.normal(0, std, shape).astype("float32"))
    return copy


def small_dff_rfcn(seed=1):
    """A 64 x 64 dff_rfcn model of 3 classes small enough for unit tests (ResNet-18 at
    width 0.125, stride 8, small anchors), its flow head off zero so that propagated
    frames differ from their key frame."""
    import keras
    from keras_video.models import build_model

    keras.utils.set_random_seed(seed)
    model = build_model("dff_rfcn", num_classes=3, input_shape=(64, 64, 3),
                        backbone="resnet18", width=0.125, feature_width=16, flow_width=0.125,
                        output_stride=8, anchor_scales=(1, 2, 4))
    flow = model.get_layer("flow_net").get_layer("predict_flow")
    flow.kernel.assign(np.random.default_rng(0).normal(0, 0.3, flow.kernel.shape))
    return model
