"""Named, reproducible experiments: one dict of settings each, run by one command.

    python -m keras_video.train --experiment=oscillation_seed000

Any flag given on the command line overrides the experiment's value. A model run with
no --experiment uses DEFAULT_EXPERIMENT[model].
"""

import dataclasses
import typing

from keras_video.data.pipeline import ClipSpec


# The groups --help lists the settings in.
GROUPS = ("experiment", "data", "model", "optimisation", "runtime", "deep feature flow",
          "detection")
CLIP_MODELS = ("cnn_lstm", "c3d", "frame_cnn", "r3d", "r2plus1d")  # prefixes
SEGMENTATION_MODELS = ("dff", "frame_seg")
DETECTION_MODELS = ("dff_rfcn", "rfcn")
DFF_MODELS = ("dff", "dff_rfcn")  # the models with a flow net


def setting(default, group, help, models=None, flag=None):
    """A config field with the line of help `--help` prints, its group, the model
    families it applies to (None: every model; else name prefixes, e.g. ("r3d", "c3d"),
    or "builder": the model builders that take an argument of the field's name), and its
    flag name where that is not the field's name."""
    return dataclasses.field(default=default, metadata=dict(group=group, help=help,
                                                            models=models, flag=flag))


@dataclasses.dataclass
class DataConfig:
    """What a run reads and how a clip is cut from it (group "data")."""

    source: str = setting("synthetic:oscillation", "data",
                          "what to train on: a folder, CSV, "
                        "tfrecord:DIR, tfds:NAME, ucf101:PATH, hmdb51:PATH or synthetic:NAME "
                        "(README)", flag="data")
    split: int = setting(0, "data",
                         "official split (1-3) of ucf101:, hmdb51:, tfds:ucf101; "
                         "0: --data's own or 1", CLIP_MODELS)
    eval_data: str = setting("", "data", "held-out data; empty: generated (synthetic:) or "
                             "split off --data", CLIP_MODELS)
    data_dir: str = setting("", "data", "where synthetic: data is generated; empty: "
                            "MODEL_DIR/data")
    holdout_fraction: float = setting(0.1, "data", "fraction of --data held out for "
                                      "validation (and test, without --eval_data); "
                                      "detection: of the training videos",
                                      CLIP_MODELS + DETECTION_MODELS)
    num_train: int = setting(3000, "data", "synthetic data: training videos")
    num_val: int = setting(300, "data", "synthetic data: validation videos")
    num_eval: int = setting(500, "data", "synthetic data: held-out test videos")
    frames: int = setting(30, "data", "frames per clip (segmentation: per generated video)")
    size: int = setting(64, "data", "frame height and width the model reads")
    sampling: str = setting("first", "data", "which frames: first | uniform | random | "
                            "center", CLIP_MODELS)
    stride: int = setting(1, "data", "frames between sampled frames", CLIP_MODELS)
    grayscale: bool = setting(False, "data", "read frames as gray", CLIP_MODELS)
    resize: tuple = setting((), "data", "HEIGHT,WIDTH frames are decoded to before the "
                            "crop; empty: --size (detection: the model's input size)",
                            CLIP_MODELS + DETECTION_MODELS)
    crop: str = setting("center", "data", "training crop: center | random (C3D) | "
                        "multiscale_corner (ResNet3D)", CLIP_MODELS)
    flip: bool = setting(False, "data", "random left-right mirror in training", CLIP_MODELS)
    modality: str = setting("rgb", "data", "rgb | flow (DIS optical flow of the frames)",
                            CLIP_MODELS)
    flow_bound: float = setting(20.0, "data", "modality=flow: pixels quantized to 0 / 255",
                                CLIP_MODELS)
    cache: str = setting("memory", "data", "decoded clips kept: empty (none), memory, or "
                         "a directory", CLIP_MODELS)
    on_bad_sample: str = setting("error", "data", "a bad file: error (stop, naming it) | "
                                 "skip (log and count it)", CLIP_MODELS)

    def clip_spec(self):
        """How a clip is cut from a video (keras_video.data.pipeline.ClipSpec)."""
        return ClipSpec(self.frames, (self.size, self.size), self.sampling, self.stride,
                        self.grayscale, tuple(self.resize), self.crop, self.flip,
                        self.modality, self.flow_bound)


@dataclasses.dataclass
class ModelConfig:
    """The model family and its architecture and weights (group "model")."""

    name: str = setting("cnn_lstm", "model",
                        "model family (keras_video.models.model_names)", flag="model")
    backbone: str = setting("small", "model", "per-frame 2D backbone "
                            "(keras_video.models.backbones.BACKBONES)", "builder")
    backbone_weights: str = setting("none", "model", "backbone weights: none, imagenet "
                                    "(keras.applications), or a .pth / .weights.h5 file",
                                    "builder")
    freeze_backbone: bool = setting(False, "model", "keep the backbone's weights fixed "
                                    "(cnn_lstm: its features are computed once)", "builder")
    pool: tuple = setting((), "model",
                          "SIZE,STRIDE of a max-pool on the backbone's feature "
                          "map (the seed's 3,2)", "builder")
    lstm_units: tuple = setting((100, 100), "model", "units of each LSTM layer", "builder")
    frame_difference: bool = setting(False, "model", "feed each frame with its difference "
                                     "from the previous one", "builder")
    readout: str = setting("flatten", "model", "per-frame features: flatten | keypoints "
                           "(the (x, y) of learnt keypoints)", "builder")
    keypoints: int = setting(32, "model", "how many keypoints (readout=keypoints)",
                             "builder")
    batch_norm: bool = setting(False, "model", "BatchNorm after every conv (mmaction2's "
                               "C3D variant)", "builder")
    dropout: float = setting(-1.0, "model", "dropout before the classifier; < 0: the "
                             "model's own default (0.5 for C3D, else 0)", "builder")
    width: float = setting(1.0, "model", "channel multiplier (smaller models for a CPU)",
                           "builder")
    normalization: str = setting("", "model", "input normalisation mode "
                                 "(keras_video.layers.ImageNormalization); empty: the "
                                 "model's default", "builder")
    conv1_t_size: int = setting(7, "model", "temporal kernel size of conv1 (Hara et al.)",
                                "builder")
    conv1_t_stride: int = setting(1, "model", "temporal stride of conv1", "builder")
    no_max_pool: bool = setting(False, "model", "no max-pool after conv1", "builder")
    shortcut_type: str = setting("B", "model", "residual shortcut: A (zero-padded "
                                 "identity) or B (1x1x1 conv)", "builder")
    widen_factor: float = setting(1.0, "model", "ResNet3D's channel widening", "builder")
    label_scale: float = setting(1.0, "model", "regression: the network fits label / this "
                                 "(the seed's 15)", "builder")
    pretrained: str = setting("", "model", "a .pth / .keras / .weights.h5 to start from "
                              "(keras_video.models.pretrained)", CLIP_MODELS)
    freeze_until: str = setting("", "model", "freeze every layer before the first named "
                                "like this", CLIP_MODELS)


@dataclasses.dataclass
class OptimizationConfig:
    """Loss, batches, epochs, optimizer and learning-rate schedule (group
    "optimisation")."""

    loss: str = setting("mse", "optimisation", "regression loss: mse | rmse",
                        ("cnn_lstm",))
    batch_size: int = setting(32, "optimisation", "global batch (split over replicas)")
    epochs: int = setting(20, "optimisation", "training epochs")
    steps_per_epoch: int = setting(0, "optimisation", "steps an epoch; 0: the whole "
                                   "training set")
    optimizer: str = setting("adam", "optimisation", "adam | sgd")
    lr: float = setting(1e-3, "optimisation", "base learning rate")
    lr_schedule: str = setting("cosine", "optimisation", "cosine | plateau | step | "
                               "constant")
    warmup_epochs: float = setting(1.0, "optimisation", "cosine: warm-up epochs")
    lr_step_epochs: float = setting(10.0, "optimisation",
                                    "step: lr / 10 every this many epochs")
    plateau_patience: int = setting(10, "optimisation", "plateau: epochs without a better "
                                    "val_loss before lr / 10")
    momentum: float = setting(0.9, "optimisation", "sgd: momentum")
    weight_decay: float = setting(0.0, "optimisation", "decoupled weight decay")
    head_lr_multiplier: float = setting(1.0, "optimisation", "the head learns at lr x this "
                                        "(the C3D seed's 10)", CLIP_MODELS)


@dataclasses.dataclass
class RuntimeConfig:
    """Where and how the run executes: its directory, strategy, precision, XLA,
    seed, output (group "runtime")."""

    model_dir: str = setting("", "runtime", "the run directory; empty: runs/EXPERIMENT")
    strategy: str = setting("auto", "runtime", "auto | default | mirrored | multi_worker "
                            "(BUILD.md)")
    mixed_precision: bool = setting(False, "runtime", "bfloat16 compute on a CPU, float16 "
                                    "on a GPU")
    jit_compile: typing.Optional[bool] = setting(None, "runtime", "XLA; unset: Keras "
                                                 "decides (XLA with a GPU)")
    seed: int = setting(0, "runtime", "random seed (data generation, shuffling, weights)")
    quiet: bool = setting(False, "runtime", "one line per epoch instead of progress bars")


@dataclasses.dataclass
class DFFConfig:
    """Deep Feature Flow's data, N_feat and staged training (group "deep feature
    flow")."""

    seg_classes: int = setting(4, "deep feature flow", "synthetic:segmentation classes, "
                               "background included", SEGMENTATION_MODELS)
    key_range: int = setting(9, "deep feature flow", "training pairs: key frame = current "
                             "- randint(0, key_range)",
                             SEGMENTATION_MODELS + DETECTION_MODELS)
    feature_width: int = setting(1024, "deep feature flow", "N_feat's output channels",
                                 "builder")
    output_stride: int = setting(16, "deep feature flow", "N_feat's feature grid stride "
                                 "(16 as the paper, or 8)", "builder")
    flow_width: float = setting(-1.0, "deep feature flow", "flow net channel multiplier; "
                                "< 0: --width", DFF_MODELS)
    feature_init: str = setting("", "deep feature flow", "a trained frame_seg / dff .keras "
                                "(or run dir) for N_feat and N_task (dff_rfcn: an rfcn "
                                "run)", DFF_MODELS)
    freeze_feature: bool = setting(False, "deep feature flow", "N_feat and N_task stay as "
                                   "--feature_init gives them", DFF_MODELS)
    train_task: bool = setting(False, "deep feature flow", "with --freeze_feature, N_task "
                               "still trains, on warped features as the paper's end-to-end "
                               "training adapts it", ("dff_rfcn",))
    flow_pretrain_steps: int = setting(0, "deep feature flow",
                                       "steps of the flow net alone "
                                       "on ground-truth flow", DFF_MODELS)
    flow_pretrain_clips: int = setting(1000, "deep feature flow", "fresh clips the flow "
                                       "pre-training reads", DFF_MODELS)
    flow_pretrain_lr: float = setting(1e-3, "deep feature flow", "flow pre-training "
                                      "learning rate", DFF_MODELS)
    eval_key_intervals: tuple = setting((1, 10), "deep feature flow",
                                        "key intervals of the "
                                        "held-out mIoU / mAP (streaming engine)",
                                        DFF_MODELS)


@dataclasses.dataclass
class DetectionConfig:
    """Video object detection on ILSVRC2015 VID-layout data (group "detection")."""

    image_set: str = setting("DET_train_30classes+VID_train_15frames", "detection",
                             "training lists under ROOT/ImageSets, '+'-joined (DFF's)",
                             DETECTION_MODELS)
    test_image_set: str = setting("VID_val_videos", "detection", "held-out video list "
                                  "(mAP by motion speed)", DETECTION_MODELS)
    classes: str = setting("", "detection", "a file of WordNet ids or VID class names, one a "
                           "line, replacing the classes; empty: ROOT/classes.txt, else the "
                           "30 VID classes", DETECTION_MODELS)
    anchor_scales: tuple = setting((8, 16, 32), "detection", "anchor sides in units of the "
                                   "feature stride (the reference's 8,16,32 at ~600 px "
                                   "frames)", "builder")
    ohem: bool = setting(True, "detection", "online hard example mining: R-FCN's loss on the "
                         "128 hardest of the RoIs", DETECTION_MODELS)
    det_images: int = setting(-1, "detection", "synthetic:vid: DET single images (-1: as "
                              "many as VID training frames)", DETECTION_MODELS)
    object_classes: int = setting(3, "detection", "synthetic:vid: object classes (shape "
                                  "families)", DETECTION_MODELS)


@dataclasses.dataclass
class TrainConfig:
    """Every setting of a training run, nested by group as TF Model Garden's configs:
    `config.data`, `config.model`, `config.optimization`, `config.runtime`,
    `config.dff`, `config.detection`. Each field's metadata holds its help line, its group and the models it
    applies to; its flag (and its name in an experiment) is the field's name, except
    `--data` (data.source) and `--model` (model.name). A setting that does not apply to
    the chosen model is refused by `make_config` when it differs from its default."""

    experiment: str = setting("", "experiment", "a named recipe of EXPERIMENTS; flags "
                              "override its values (default: the model's own recipe)")
    task: str = setting("regression", "experiment", "set from the data: regression | "
                        "classification | segmentation (or by the model: dff, frame_seg)")
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    optimization: OptimizationConfig = dataclasses.field(default_factory=OptimizationConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
    dff: DFFConfig = dataclasses.field(default_factory=DFFConfig)
    detection: DetectionConfig = dataclasses.field(default_factory=DetectionConfig)

    @classmethod
    def from_settings(cls, settings):
        """A config from flat settings {flag name: value} (an experiment's dict, flags);
        an unknown name is an error naming it."""
        unknown = set(settings) - set(SETTINGS)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        groups = {section: {} for section in SECTIONS}
        top = {}
        for flag, value in settings.items():
            section, name = SETTINGS[flag]
            (groups[section] if section else top)[name] = value
        return cls(**top, **{section: SECTIONS[section](**values)
                             for section, values in groups.items()})

    def settings(self):
        """The flat settings {flag name: value}: what an experiment and the flags set,
        and what config.json records (keras_video.training.trainer)."""
        return {flag: getattr(getattr(self, section) if section else self, name)
                for flag, (section, name) in SETTINGS.items()}

    def replace(self, **settings):
        """A copy with some flat settings changed (e.g. replace(model_dir=...))."""
        return TrainConfig.from_settings({**self.settings(), **settings})

    def model_config(self, num_classes=None):
        """The keyword arguments of build_model(self.model.name, ...): the settings the
        model's builder takes, so one config serves every model family."""
        from keras_video.models import model_arguments

        m = self.model
        candidates = dict(
            input_shape=self.data.clip_spec().shape, backbone=m.backbone,
            backbone_weights=m.backbone_weights, freeze_backbone=m.freeze_backbone,
            pool=tuple(m.pool) or None, lstm_units=tuple(m.lstm_units),
            frame_difference=m.frame_difference, readout=m.readout,
            keypoints=m.keypoints, batch_norm=m.batch_norm,
            task=self.task, width=m.width, conv1_t_size=m.conv1_t_size,
            conv1_t_stride=m.conv1_t_stride, no_max_pool=m.no_max_pool,
            shortcut_type=m.shortcut_type, widen_factor=m.widen_factor)
        if m.dropout >= 0:
            candidates["dropout"] = m.dropout
        if m.normalization:
            candidates["normalization"] = m.normalization
        elif self.data.modality == "flow":  # uint8 flow, 127.5 = still: in units of the bound
            candidates["normalization"] = "tf"
        if self.task == "regression":
            candidates["label_scale"] = m.label_scale
        else:
            candidates["num_classes"] = num_classes
        accepted = model_arguments(m.name)
        if self.task == "regression" and "label_scale" not in accepted:
            raise ValueError(f"model {m.name!r} is a classifier; the data is a "
                             "regression set")
        return {k: v for k, v in candidates.items() if k in accepted}


# Each section's dataclass by its TrainConfig attribute, and every flat setting:
# flag name -> (section or None for the top level, field name).
SECTIONS = {"data": DataConfig, "model": ModelConfig, "optimization": OptimizationConfig,
            "runtime": RuntimeConfig, "dff": DFFConfig, "detection": DetectionConfig}
SETTINGS = {
    **{f.name: (None, f.name) for f in dataclasses.fields(TrainConfig)
       if f.name not in SECTIONS},
    **{f.metadata.get("flag") or f.name: (section, f.name)
       for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}}

EXPERIMENTS = {
    # The default run: a small CNN on 64x64 gray frames, trained end to end on a CPU.
    "oscillation_cnn_lstm": dict(
        model="cnn_lstm", backbone="small", size=64, grayscale=True, frames=30,
        sampling="first", lstm_units=(100, 100), label_scale=15.0, loss="rmse",
        num_train=2000, num_val=200, num_eval=500, batch_size=32, epochs=15, lr=2e-3),
    # The seed's recipe (seed 000): frozen ResNet-18, max-pool 3/2 on its 7x7 map ->
    # 3x3x512 = 4608 features a frame, LSTM 100 x 2, Dense(1), RMSE, labels / 15.
    # ImageNet weights: --backbone_weights=resnet18-f37072fd.pth (see BUILD.md).
    "oscillation_seed000": dict(
        model="cnn_lstm", backbone="resnet18", backbone_weights="none",
        freeze_backbone=True, pool=(3, 2), size=224, grayscale=False, frames=30,
        sampling="first", lstm_units=(100, 100), label_scale=15.0, loss="rmse",
        num_train=3000, num_val=300, num_eval=500, batch_size=32, epochs=30, lr=1e-3),
}

# The motion benchmark (experiments/motion): 8 motion classes no single frame tells
# apart; 16-frame random temporal crops of 32-frame 64x64 videos read at 48x48; no
# flip, since a mirror turns "move left" into "move right" and clockwise into
# anticlockwise. 12000 training videos: with fewer, the models fitted each video's look
# and stayed at chance on held-out videos. ResNet3D's conv1 spans 3 frames, not 7
# (cheaper a step). No cache: filling a memory cache of 12000 decoded videos costs
# about what it saves in a 20-minute run. Figures: experiments/RESULTS.md, motion
# benchmark; how the recipes came about: experiments/LOG.md.
_MOTION = dict(data="synthetic:motion", task="classification", frames=16, size=48,
               sampling="random", crop="center", flip=False, cache="",
               num_train=12000, num_val=200, num_eval=400, batch_size=16, epochs=16,
               steps_per_epoch=100, lr=1e-3, optimizer="adam", lr_schedule="cosine")
EXPERIMENTS.update({
    # C3D with a BatchNorm after every conv (mmaction2's norm_cfg=BN3d): the published
    # C3D, without it, does not leave chance from scratch here. Adam at 3e-4 (at 1e-3 it
    # can stay on the loss plateau), 3600 steps, mean/std normalisation (the "c3d"
    # scaling is for the Sports-1M weights). bfloat16 compute, fast on a CPU with AMX
    # or AVX512-BF16; elsewhere pass --nomixed_precision.
    "motion_c3d": dict(_MOTION, model="c3d", width=0.25, normalization="kinetics",
                       batch_norm=True, lr=3e-4, epochs=36, mixed_precision=True),
    # 6400 steps: at 1600 the senses of rotation are still confused.
    "motion_r3d18": dict(_MOTION, model="r3d18", width=0.25, conv1_t_size=3, epochs=64),
    # 3400 steps: what fits 20 minutes of training on a 2-core CPU.
    "motion_r2plus1d18": dict(_MOTION, model="r2plus1d18", width=0.25, conv1_t_size=3,
                              epochs=34),
    # Each frame with its difference from the previous one (without it the CNN-LSTM
    # stays at chance), and the keypoint readout: the (x, y) of 32 learnt keypoints per
    # frame, read off a half-resolution map (backbone small_hires), which the sense of
    # a rotation needs (flattened max-pooled features keep little of where things
    # are). bfloat16 compute, as motion_c3d.
    "motion_cnn_lstm": dict(_MOTION, model="cnn_lstm", backbone="small_hires",
                            readout="keypoints", keypoints=32, lstm_units=(64,),
                            frame_difference=True, epochs=18, mixed_precision=True),
    # The per-frame baseline: scores averaged over frames cannot see motion.
    "motion_frame_cnn": dict(_MOTION, model="frame_cnn"),
})
# The same models on optical flow (modality "flow", the flow stream of a two-stream
# network): 16 DIS flows of 17 consecutive frames, computed by OpenCV in the input
# pipeline; motions here stay under 4 px a frame at 48 x 48 (99.99% of flow values),
# hence flow_bound 4. The CNN-LSTM reads the flow itself: no frame differences.
_FLOW = dict(modality="flow", flow_bound=4.0, normalization="")  # "": "tf" for flow
EXPERIMENTS.update({
    f"{name}_flow": dict(EXPERIMENTS[name], **_FLOW)
    for name in ("motion_c3d", "motion_r3d18", "motion_r2plus1d18", "motion_frame_cnn")})
EXPERIMENTS["motion_cnn_lstm_flow"] = dict(EXPERIMENTS["motion_cnn_lstm"], **_FLOW,
                                           frame_difference=False)

# Deep Feature Flow on the moving-shapes segmentation videos (experiments/dff). CPU
# sizes: 128 x 128 frames, ResNet-50 at half width with output stride 8 (a 16 x 16
# feature grid: at stride 16 an 8 x 8 grid is too coarse for 12 - 22 px objects), a thin
# flow net. The per-frame model trains first; DFF then starts from its N_feat and N_task
# and keeps them fixed (so key frames are the per-frame model's), pre-trains the flow
# net on ground-truth flow of fresh clips and trains it end to end (experiments/dff).
_SEGMENTATION = dict(data="synthetic:segmentation", task="segmentation", size=128,
                     frames=30, seg_classes=4, num_train=240, num_val=6, num_eval=8,
                     backbone="resnet50", width=0.5, feature_width=256, output_stride=8,
                     batch_size=8, epochs=6, steps_per_epoch=60, lr=1e-3,
                     optimizer="adam", lr_schedule="cosine", warmup_epochs=0.5, key_range=9)
EXPERIMENTS.update({
    "seg_frame": dict(_SEGMENTATION, model="frame_seg"),
    "seg_dff": dict(_SEGMENTATION, model="dff", flow_width=0.125,
                    feature_init="runs/seg_frame", freeze_feature=True,
                    flow_pretrain_steps=8000, flow_pretrain_clips=1000, flow_pretrain_lr=1e-3,
                    batch_size=16, epochs=30, steps_per_epoch=300, lr=3e-4, warmup_epochs=0.0),
})

# Video object detection on the synthetic ILSVRC2015-layout data (experiments/
# dff_detection). CPU sizes: 128 x 128 frames, the reference's ResNet-101 at half width
# with output stride 8 (a 16 x 16 grid for 24 - 52 px objects), anchors 16, 32, 64 px
# (scales 2, 4, 8 at stride 8), 256 feature channels. The per-frame R-FCN trains first; DFF starts
# from its N_feat and N_task, keeps them fixed, and trains the flow net through the
# detection losses on (current, key) pairs.
_DETECTION = dict(data="synthetic:vid", task="detection", size=128, frames=30,
                  num_train=60, num_eval=10, object_classes=3, backbone="resnet101",
                  width=0.5, feature_width=256, output_stride=8, anchor_scales=(2, 4, 8),
                  batch_size=4, epochs=10, steps_per_epoch=100, lr=1e-3, optimizer="adam",
                  lr_schedule="cosine", warmup_epochs=0.5, key_range=9)
EXPERIMENTS.update({
    "vid_rfcn": dict(_DETECTION, model="rfcn"),
    # The flow net first learns on ground-truth flow of fresh generated videos (as
    # DFF's FlowNet on Flying Chairs); then all three parts train end to end on the
    # detection losses, as the paper's, from the R-FCN run's N_feat and N_task
    # (60 epochs: at interval 10 on the 10 held-out videos, 84.5 mAP after 5, 89.4
    # after 15, 91.4 after 30, 92.7 after 60; LOG.md 2026-12-07).
    "vid_dff_rfcn": dict(_DETECTION, model="dff_rfcn", flow_width=0.125,
                         feature_init="runs/vid_rfcn", epochs=60, lr=3e-4,
                         warmup_epochs=0.0, flow_pretrain_steps=8000),
})

# Video object detection on the real ILSVRC2015 VID + DET, for a GPU
# (experiments/dff_detection/README.md): the reference's
# resnet_v1_101_flownet_imagenet_vid_rfcn_end2end_ohem.yaml: ResNet-101 from ImageNet,
# frames at about its 600 x 1000 scale, anchors 8, 16, 32, SGD lr 2.5e-4 (momentum 0.9,
# weight decay 5e-4) for 2 epochs with lr / 10 after 1.333, 4 images a step (the
# reference's 4 GPUs; the losses are summed over them as its gradients), OHEM.
_ILSVRC = dict(data="imagenet_vid:data/ILSVRC2015", task="detection", resize=(608, 1008),
               backbone="resnet101", backbone_weights="resnet101-63fe2227.pth",
               feature_width=1024, output_stride=16, anchor_scales=(8, 16, 32),
               holdout_fraction=0.01, batch_size=4, epochs=2, optimizer="sgd", lr=2.5e-4,
               momentum=0.9, weight_decay=5e-4, lr_schedule="step", lr_step_epochs=1.333,
               key_range=9)
EXPERIMENTS.update({
    "ilsvrc_rfcn_r101": dict(_ILSVRC, model="rfcn"),
    # DFF trained end to end as the paper (its FlowNet starts from scratch here: the
    # reference's FlyingChairs FlowNet is an MXNet file we do not convert).
    "ilsvrc_dff_rfcn_r101": dict(_ILSVRC, model="dff_rfcn", flow_width=1.0,
                                 eval_key_intervals=(1, 10)),
})

# UCF101 fine-tuning recipes for a GPU (experiments/ucf101/README.md). The data and
# the pretrained files are the user's: --data=ucf101:PATH, --pretrained=FILE.pth.
EXPERIMENTS.update({
    # C3D from Sports-1M (Tran et al. 2015: 82.3% with an SVM on fc6; the PyTorch seed
    # fine-tunes end to end): resize to 128x171, random 112 crop, flip; SGD lr 1e-3,
    # momentum 0.9, weight decay 5e-4, lr / 10 every 10 epochs, fc8 at 10x.
    "ucf101_c3d_sports1m": dict(
        model="c3d", data="ucf101:data/UCF-101", split=1, task="classification",
        pretrained="c3d-pretrained.pth", frames=16, size=112, sampling="random",
        resize=(128, 171), crop="random", flip=True, cache="", dropout=0.5,
        batch_size=20, epochs=100, optimizer="sgd", lr=1e-3, momentum=0.9,
        weight_decay=5e-4, lr_schedule="step", lr_step_epochs=10,
        head_lr_multiplier=10.0),
    # ResNet3D-50 from Kinetics-700 + Moments in Time (Hara et al.: 92.9%, the seed's
    # re-run 93.55%): fine-tune conv5_x (layer4) and fc; multi-scale corner crop +
    # flip; SGD lr 0.003, momentum 0.9, weight decay 1e-3, lr / 10 on plateau.
    "ucf101_r3d50_km": dict(
        model="r3d50", data="ucf101:data/UCF-101", split=1, task="classification",
        pretrained="r3d50_KM_200ep.pth", shortcut_type="B", conv1_t_size=7,
        frames=16, size=112, sampling="random", resize=(128, 171),
        crop="multiscale_corner", flip=True, cache="", batch_size=128, epochs=200,
        optimizer="sgd", lr=0.003, momentum=0.9, weight_decay=1e-3,
        lr_schedule="plateau", plateau_patience=10, freeze_until="layer4"),
})

DEFAULT_EXPERIMENT = {"dff": "seg_dff", "frame_seg": "seg_frame", "rfcn": "vid_rfcn",
                      "dff_rfcn": "vid_dff_rfcn", "cnn_lstm": "oscillation_cnn_lstm",
                      "c3d": "motion_c3d",
                      "r3d18": "motion_r3d18", "r2plus1d18": "motion_r2plus1d18",
                      "frame_cnn": "motion_frame_cnn"}


def make_config(experiment="", overrides=None):
    """TrainConfig from an experiment name and explicit overrides."""
    overrides = dict(overrides or {})
    model = overrides.get("model", "cnn_lstm")
    experiment = experiment or DEFAULT_EXPERIMENT.get(model, "")
    values = {}
    if experiment:
        if experiment not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {experiment!r}; choose one of "
                             f"{', '.join(sorted(EXPERIMENTS))}")
        values.update(EXPERIMENTS[experiment])
    values.update(overrides)
    values["experiment"] = experiment
    config = TrainConfig.from_settings(values)
    check_applicable(config, experiment, set(overrides))
    return config


def setting_fields():
    """Every setting's field by its flag name, in --help's order."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig) if f.name not in SECTIONS}
    for section in SECTIONS.values():
        fields.update({f.metadata.get("flag") or f.name: f
                       for f in dataclasses.fields(section)})
    return fields


def parse_setting(text):
    """("name", value) of a "NAME=VALUE" setting as a script's --set gives it, the
    value of the setting's type (a tuple from "1,2,3"); an unknown name is an error."""
    name, _, value = text.partition("=")
    field = setting_fields().get(name)
    if field is None:
        raise ValueError(f"{text}: no setting {name!r} (see python -m keras_video.train "
                         "--help)")
    if isinstance(field.default, tuple):
        return name, tuple(int(v) for v in value.split(",") if v)
    if isinstance(field.default, bool):
        return name, value.lower() in ("1", "true", "yes")
    return name, type(field.default)(value) if field.default is not None else value


def models_of(name):
    """The registered models setting `name` applies to (None: every model)."""
    from keras_video.models import model_arguments, model_names

    field = setting_fields()[name]
    models = field.metadata.get("models")
    if models is None:
        return None
    if models == "builder":
        return [m for m in model_names() if field.name in model_arguments(m)]
    # A name is a model, or a family whose members add a depth (r3d: r3d18, r3d50, ...).
    return [m for m in model_names() if m in models or m.rstrip("0123456789") in models]


def check_applicable(config, experiment="", given=()):
    """Refuses a setting that differs from its default but does nothing for
    config.model.name (a builder that does not take it, or a stage the model has not),
    naming the setting, where it came from and the models it applies to."""
    from keras_video.models import model_arguments

    model = config.model.name
    model_arguments(model)  # an unknown model is named first
    settings = config.settings()
    for name, field in setting_fields().items():
        if settings[name] == field.default or name in ("experiment", "model", "task"):
            continue
        models = models_of(name)
        if models is None or model in models:
            continue
        source = "" if name in given or not experiment else f" (from --experiment={experiment})"
        raise ValueError(f"--{name}{source} does not apply to --model={model}; it "
                         f"applies to {_compact(models) or 'no registered model'}")


def _compact(models):
    """'c3d, r3d*' for a list holding c3d and every r3d depth."""
    from keras_video.models import model_names

    names = []
    for name in models:
        family = name.rstrip("0123456789")
        if family in ("r3d", "r2plus1d") and family != name:
            if all(m in models for m in model_names() if m.rstrip("0123456789") == family):
                name = family + "*"
        if name not in names:
            names.append(name)
    return ", ".join(names)


def help_text():
    """Every setting with its default and help line, by group, with the models it
    applies to: what `python -m keras_video.train --help` prints."""
    lines = []
    by_group = {group: [] for group in GROUPS}
    for name, field in setting_fields().items():
        by_group[field.metadata["group"]].append((name, field))
    for group, fields in by_group.items():
        lines.append(f"\n{group} settings:")
        for name, field in fields:
            default = field.default
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            lines.append(f"  --{name}  (default: {'empty' if shown == '' else shown})")
            lines.append(f"      {field.metadata['help']}")
            models = models_of(name)
            if models is not None:
                lines.append(f"      applies to: {_compact(models)}")
    lines.append("\nexperiments (--experiment): " + ", ".join(sorted(EXPERIMENTS)))
    lines.append("default experiment of a model: " + ", ".join(
        f"{m}: {e}" for m, e in sorted(DEFAULT_EXPERIMENT.items())))
    return "\n".join(lines)
