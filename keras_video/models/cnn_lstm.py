"""CNN -> LSTM: a 2D CNN reads every frame, an LSTM reads the sequence of features.

    clip [T, H, W, C] -> TimeDistributed(frame_encoder) -> [T, D] -> temporal_head -> y
    frame_encoder: normalisation -> backbone -> optional max-pool -> readout
    readout: "flatten" (the seeds'), or "keypoints": the (x, y) of K learnt keypoints
             (a 1x1 conv, then keras_video.layers.SpatialSoftArgmax) next to the
             globally max-pooled map: where things are, not only what
    temporal_head: LSTM x N (last step) -> dense (regression, or class softmax)

With frame_difference=True the clip is normalised first and every frame reaches the
encoder with its difference from the frame before (keras_video.layers.FrameDifference,
2C channels; a backbone trained from scratch): what lets it see motion directions.
The sense of a rotation needs positions to compare from frame to frame: the keypoint
readout on the small_hires backbone (experiments/RESULTS.md, motion benchmark).

The two halves are sub-models reachable by name, so a frozen backbone's features can be
computed once and the head trained on them (keras_video.tasks.feature_cache).
"""

import keras

from keras_video.layers import FrameDifference, ImageNormalization, SpatialSoftArgmax
from keras_video.models.backbones import frame_backbone
from keras_video.models.backbones import normalization as backbone_normalization


READOUTS = ("flatten", "keypoints")


def frame_encoder(frame_shape, backbone="small", backbone_weights=None,
                  freeze_backbone=False, pool=None, normalize=True, width=1.0,
                  normalization=None, readout="flatten", keypoints=32):
    """image [H, W, C] -> flat feature vector; pool = (size, stride) or None.
    normalize=False: the input is normalised already (frame differences);
    normalization: an ImageNormalization mode, None for the backbone's own;
    readout: one of READOUTS, with `keypoints` keypoints."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}, not {readout!r}")
    net, norm = frame_backbone(backbone, frame_shape, backbone_weights, width)
    norm = normalization or norm
    if freeze_backbone:
        net.trainable = False
    inputs = keras.Input(frame_shape, name="frame")
    x = ImageNormalization(norm, name="normalize")(inputs) if normalize else inputs
    # training=False keeps a frozen backbone's BatchNorm in inference mode.
    x = net(x, training=False) if freeze_backbone else net(x)
    if pool:
        size, stride = pool
        x = keras.layers.MaxPooling2D(size, stride, name="feature_pool")(x)
    if readout == "keypoints":
        heat = keras.layers.Conv2D(keypoints, 1, name="keypoint_heat")(x)
        points = SpatialSoftArgmax(name="keypoints")(heat)
        look = keras.layers.GlobalMaxPooling2D(name="global_max_pool")(x)
        x = keras.layers.Concatenate(name="keypoints_and_features")([points, look])
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, x, name="frame_encoder")


def temporal_head(num_frames, feature_dim, lstm_units=(100, 100), dropout=0.0,
                  task="regression", num_classes=None, label_scale=1.0):
    """[T, D] features -> prediction.

    Regression predicts in label units; label_scale s means the dense layer fits
    label / s (the seed trained on frequency / 15), its output multiplied back by s.
    """
    inputs = keras.Input((num_frames, feature_dim), name="features")
    x = inputs
    for i, units in enumerate(lstm_units):
        last = i == len(lstm_units) - 1
        x = keras.layers.LSTM(units, return_sequences=not last, name=f"lstm{i + 1}")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    if task == "regression":
        x = keras.layers.Dense(1, dtype="float32", name="dense")(x)
        outputs = keras.layers.Rescaling(label_scale, dtype="float32", name="predictions")(x)
    elif task == "classification":
        if not num_classes or num_classes < 2:
            raise ValueError("classification needs num_classes >= 2")
        outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                                     name="predictions")(x)
    else:
        raise ValueError(f"task must be 'regression' or 'classification', not {task!r}")
    return keras.Model(inputs, outputs, name="temporal_head")


def cnn_lstm(input_shape=(30, 64, 64, 1), backbone="small", backbone_weights=None,
             freeze_backbone=False, pool=None, lstm_units=(100, 100), dropout=0.0,
             task="regression", num_classes=None, label_scale=1.0,
             frame_difference=False, width=1.0, normalization=None, readout="flatten",
             keypoints=32, name="cnn_lstm"):
    num_frames, *frame_shape = input_shape
    pool = tuple(pool) if pool else None
    clips = keras.Input(tuple(input_shape), name="clips")
    x = clips
    if frame_difference:
        if backbone_weights not in (None, "none"):
            raise ValueError("frame_difference doubles the channels a backbone reads: "
                             "train it from scratch (--backbone_weights=none)")
        norm = normalization or backbone_normalization(backbone)
        if norm == "none":
            raise ValueError(f"frame_difference: backbone {backbone!r} normalises its own "
                             "3-channel input; use one that keras_video normalises")
        # The backbone's normalisation on the clip, so that differences are in the
        # same units as the frames and carry no mean.
        x = ImageNormalization(norm, name="normalize")(x)
        x = FrameDifference(name="frame_difference")(x)
        frame_shape[-1] *= 2
    encoder = frame_encoder(tuple(frame_shape), backbone, backbone_weights,
                            freeze_backbone, pool, normalize=not frame_difference,
                            width=width, normalization=normalization, readout=readout,
                            keypoints=keypoints)
    head = temporal_head(num_frames, encoder.output.shape[-1], tuple(lstm_units), dropout,
                         task, num_classes, label_scale)
    features = keras.layers.TimeDistributed(encoder, name="frame_features")(x)
    return keras.Model(clips, head(features), name=name)
