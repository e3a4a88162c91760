"""Frame CNN: a 2D CNN classifies every frame on its own; the clip's score is the mean.

    clip [T, H, W, 3] -> TimeDistributed(backbone -> global average pool) -> [T, D]
        -> dropout -> fc (per frame) [T, classes] -> activation -> mean over frames

The baseline that cannot see motion: shuffling the frames does not change its output,
so whatever a 3D CNN gains over it is what the order of frames tells. With a
`classifier_activation` (softmax by default) the clip's output is the mean of the
per-frame probabilities, the usual late fusion, which still sums to 1; with None it is
the mean of the per-frame logits.
"""

import keras
from keras import layers

from keras_video.layers import ImageNormalization
from keras_video.models.backbones import frame_backbone


def frame_cnn(num_classes=400, input_shape=(16, 112, 112, 3), dropout=0.0, width=1.0,
              classifier_activation="softmax", normalization=None, name="frame_cnn",
              backbone="small", backbone_weights=None, freeze_backbone=False):
    """Per-frame `backbone` (keras_video.models.backbones) + `fc`, averaged over frames.

    `normalization` None takes the backbone's own (e.g. "unit" for small, "imagenet"
    for resnet18). `width` scales the channels of the small and resnet18/34 backbones
    (1.0 for pretrained weights; other backbones take 1.0 only).
    """
    frame_shape = tuple(input_shape[1:])
    net, norm = frame_backbone(backbone, frame_shape, backbone_weights, width)
    if freeze_backbone:
        net.trainable = False

    frame = keras.Input(frame_shape, name="frame")
    # training=False keeps a frozen backbone's BatchNorm in inference mode.
    features = net(frame, training=False) if freeze_backbone else net(frame)
    features = layers.GlobalAveragePooling2D(name="frame_pool")(features)
    encoder = keras.Model(frame, features, name="frame_encoder")

    inputs = keras.Input(tuple(input_shape), name="clips")
    x = ImageNormalization(normalization or norm, name="normalize")(inputs)
    x = layers.TimeDistributed(encoder, name="frame_features")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(num_classes, dtype="float32", name="fc")(x)  # each frame's logits
    if classifier_activation is not None:
        x = layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
    outputs = layers.GlobalAveragePooling1D(dtype="float32", name="frame_average")(x)
    return keras.Model(inputs, outputs, name=name)
