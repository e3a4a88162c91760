"""Named, reproducible experiments: one dict of settings each, run by one command.

    python -m keras_video.train --experiment=oscillation_seed000

Any flag given on the command line overrides the experiment's value. A model run with
no --experiment uses DEFAULT_EXPERIMENT[model].
"""

import dataclasses
import typing

from keras_video.data.pipeline import ClipSpec


@dataclasses.dataclass
class TrainConfig:
    experiment: str = ""
    model: str = "cnn_lstm"
    backbone: str = "small"
    backbone_weights: str = "none"
    freeze_backbone: bool = False
    pool: tuple = ()  # (size, stride) max-pool on the backbone's feature map
    lstm_units: tuple = (100, 100)
    frame_difference: bool = False  # cnn_lstm: each frame with its difference from the last
    readout: str = "flatten"  # cnn_lstm per-frame features: flatten | keypoints
    keypoints: int = 32  # cnn_lstm, readout=keypoints: how many (x, y) keypoints
    batch_norm: bool = False  # c3d: BatchNorm after every conv (mmaction2's norm_cfg)
    dropout: float = -1.0  # < 0: the model's own default (0.5 for C3D, else 0)
    width: float = 1.0  # channel multiplier of the 3D CNNs (small versions for a CPU)
    normalization: str = ""  # "": the model's default (keras_video.layers.ImageNormalization)
    conv1_t_size: int = 7  # ResNet3D options, as in Hara et al.'s code
    conv1_t_stride: int = 1
    no_max_pool: bool = False
    shortcut_type: str = "B"
    widen_factor: float = 1.0
    task: str = "regression"
    label_scale: float = 1.0
    loss: str = "mse"  # mse | rmse | crossentropy
    data: str = "synthetic:oscillation"
    split: int = 0  # official split (1-3) of ucf101:, hmdb51:, tfds:ucf101; 0: --data's or 1
    eval_data: str = ""  # held-out data; empty: generated (synthetic) or split off
    data_dir: str = ""  # where synthetic: data is generated; empty: MODEL_DIR/data
    holdout_fraction: float = 0.1
    num_train: int = 3000  # synthetic data only
    num_val: int = 300
    num_eval: int = 500
    frames: int = 30
    size: int = 64
    sampling: str = "first"
    stride: int = 1
    grayscale: bool = False
    resize: tuple = ()  # (height, width) frames are decoded to before the crop; (): size
    crop: str = "center"  # center | random (C3D) | multiscale_corner (ResNet3D) | ...
    flip: bool = False  # random left-right mirror in training (keras_video.data.transforms)
    modality: str = "rgb"  # rgb | flow: DIS optical flow of the frames (ClipSpec)
    flow_bound: float = 20.0  # flow: pixels at the decode size quantized to 0 / 255
    cache: str = "memory"  # "", "memory" or a directory
    on_bad_sample: str = "error"
    batch_size: int = 32
    epochs: int = 20
    steps_per_epoch: int = 0  # 0: the whole training set every epoch
    optimizer: str = "adam"  # adam | sgd (keras_video.optimizers)
    lr: float = 1e-3
    lr_schedule: str = "cosine"  # cosine | plateau | step | constant
    warmup_epochs: float = 1.0  # cosine only
    lr_step_epochs: int = 10  # step only: lr / 10 every this many epochs
    plateau_patience: int = 10  # plateau only: epochs without a better val_loss
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    pretrained: str = ""  # .pth / .keras / .weights.h5 to start from (keras_video.finetune)
    freeze_until: str = ""  # freeze every layer before the first named like this
    head_lr_multiplier: float = 1.0  # the head learns at lr x this (C3D seed: 10)
    model_dir: str = ""
    strategy: str = "auto"
    mixed_precision: bool = False  # bfloat16 compute on a CPU, float16 on a GPU
    jit_compile: typing.Optional[bool] = None  # XLA; None: Keras's "auto" (train._jit_compile)
    seed: int = 0
    quiet: bool = False  # one line per epoch instead of progress bars (logs, CI)
    # Deep Feature Flow (--model=dff / frame_seg, keras_video.dff_training)
    seg_classes: int = 4  # synthetic:segmentation classes, background included
    key_range: int = 9  # training pairs: key frame = current - randint(0, key_range)
    feature_width: int = 1024  # N_feat's output channels
    output_stride: int = 16  # N_feat's feature grid (16 as in the paper, or 8)
    flow_width: float = -1.0  # flow net channel multiplier; < 0: --width
    feature_init: str = ""  # dff: a trained frame_seg / dff .keras (or run dir) for N_feat, N_task
    freeze_feature: bool = False  # dff: N_feat and N_task stay as feature_init gives them
    flow_pretrain_steps: int = 0  # steps of the flow net alone on ground-truth flow
    flow_pretrain_clips: int = 1000  # fresh clips it trains on (dff_training.flow_pairs)
    flow_pretrain_lr: float = 1e-3
    eval_key_intervals: tuple = (1, 10)  # held-out mIoU with the streaming engine

    def clip_spec(self):
        return ClipSpec(self.frames, (self.size, self.size), self.sampling, self.stride,
                        self.grayscale, tuple(self.resize), self.crop, self.flip,
                        self.modality, self.flow_bound)

    def model_config(self, num_classes=None):
        """The keyword arguments of build_model(self.model, ...): the settings the
        model's builder takes, so one config serves every model family."""
        from keras_video.models import model_arguments

        candidates = dict(
            input_shape=self.clip_spec().shape, backbone=self.backbone,
            backbone_weights=self.backbone_weights, freeze_backbone=self.freeze_backbone,
            pool=tuple(self.pool) or None, lstm_units=tuple(self.lstm_units),
            frame_difference=self.frame_difference, readout=self.readout,
            keypoints=self.keypoints, batch_norm=self.batch_norm,
            task=self.task, width=self.width, conv1_t_size=self.conv1_t_size,
            conv1_t_stride=self.conv1_t_stride, no_max_pool=self.no_max_pool,
            shortcut_type=self.shortcut_type, widen_factor=self.widen_factor)
        if self.dropout >= 0:
            candidates["dropout"] = self.dropout
        if self.normalization:
            candidates["normalization"] = self.normalization
        elif self.modality == "flow":  # uint8 flow, 127.5 = still: in units of the bound
            candidates["normalization"] = "tf"
        if self.task == "regression":
            candidates["label_scale"] = self.label_scale
        else:
            candidates["num_classes"] = num_classes
        accepted = model_arguments(self.model)
        if self.task == "regression" and "label_scale" not in accepted:
            raise ValueError(f"model {self.model!r} is a classifier; the data is a "
                             "regression set")
        return {k: v for k, v in candidates.items() if k in accepted}

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
# anticlockwise. 12000 training videos (with 2000, the models fitted each video's look
# and stayed at chance on held-out videos). ResNet3D's conv1 spans 3 frames, not 7:
# 15% cheaper a step here. No cache: --cache=memory keeps the 12000 decoded videos
# (2.7 GB) and made an r2plus1d18 step 9% faster, but filling it took 110 s before the
# first step, about what it saves in a 20-minute run (experiments/RESULTS.md, run 8).
_MOTION = dict(data="synthetic:motion", task="classification", frames=16, size=48,
               sampling="random", crop="center", flip=False, cache="",
               num_train=12000, num_val=200, num_eval=400, batch_size=16, epochs=16,
               steps_per_epoch=100, lr=1e-3, optimizer="adam", lr_schedule="cosine")
EXPERIMENTS.update({
    # The published C3D has no BatchNorm, and without it C3D stayed at chance here in
    # every recipe tried (motion runs 1-7); with BatchNorm after every conv (mmaction2's
    # norm_cfg=BN3d) and Adam at 3e-4 it learns (at 1e-3 it left the loss-ln-8 plateau
    # in one run of three). bfloat16 compute: 1.5x faster a step on a CPU with AMX
    # (experiments/RESULTS.md, motion run 8; without bfloat16 hardware, drop it with
    # --nomixed_precision). 3600 steps: 0.9875 video top-1 in 18.5 min at seed 0, 0.89
    # and 0.93 at seeds 10 and 20 (float32: 0.8875, 0.8675, 0.9275; RESULTS.md, session
    # 18). From scratch it takes mean/std normalisation (its "c3d" scaling is for the
    # Sports-1M weights).
    "motion_c3d": dict(_MOTION, model="c3d", width=0.25, normalization="kinetics",
                       batch_norm=True, lr=3e-4, epochs=36, mixed_precision=True),
    # 6400 steps: 0.985 video top-1 in 14.3 min on the AVX-512 2-core CPU of motion
    # run 7 (1600 steps: 0.880; rotate cw / ccw still confused).
    "motion_r3d18": dict(_MOTION, model="r3d18", width=0.25, conv1_t_size=3, epochs=64),
    # 3400 steps: 0.970 video top-1, 19.2 min of training (20.0 with eval and export) on
    # the AVX-512 / AMX Xeon of motion run 8 (6400 steps: 0.980 in 21.4 min, run 7).
    "motion_r2plus1d18": dict(_MOTION, model="r2plus1d18", width=0.25, conv1_t_size=3,
                              epochs=34),
    # Each frame with its difference from the previous one: without it the CNN-LSTM
    # stayed at chance for 1600 steps (motion benchmark, runs 1-3), also with a 12 x 12
    # feature grid instead of 3 x 3 (600 steps, 2026-12-02).
    # With it, translations and growth are learnt but the sense of a rotation stays a
    # coin toss (0.850 video top-1 after 6400 steps, run 8): flattened max-pooled
    # features keep little of where things are. The keypoint readout hands the LSTM
    # the (x, y) of 32 learnt keypoints per frame, read off a half-resolution map
    # (backbone small_hires); bfloat16 compute: 1.3x faster a step with AMX.
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
                     flow_width=0.125, batch_size=8, epochs=6, steps_per_epoch=60, lr=1e-3,
                     optimizer="adam", lr_schedule="cosine", warmup_epochs=0.5,
                     key_range=9, cache="")
EXPERIMENTS.update({
    "seg_frame": dict(_SEGMENTATION, model="frame_seg"),
    "seg_dff": dict(_SEGMENTATION, model="dff", feature_init="runs/seg_frame",
                    freeze_feature=True, flow_pretrain_steps=8000, flow_pretrain_clips=1000,
                    flow_pretrain_lr=1e-3, batch_size=16, epochs=30, steps_per_epoch=300,
                    lr=3e-4, warmup_epochs=0.0),
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

DEFAULT_EXPERIMENT = {"dff": "seg_dff", "frame_seg": "seg_frame",
"cnn_lstm": "oscillation_cnn_lstm", "c3d": "motion_c3d",
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
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
    return TrainConfig(**values)
