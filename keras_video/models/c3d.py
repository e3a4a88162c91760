"""C3D (Tran et al. 2015, "Learning Spatiotemporal Features with 3D Convolutional
Networks"), laid out exactly like the PyTorch C3D of the seed
(jfzhang95/pytorch-video-recognition, network/C3D_model.py), so its weights load.

    clip [16, 112, 112, 3] -> 8 conv3x3x3 + ReLU, 5 max-pools -> [1, 4, 4, 512]
        -> flatten (channels first, 8192) -> fc6 4096 -> fc7 4096 -> fc8 logits

Layer names are the seed's module names (conv1, conv2, conv3a, ..., conv5b, fc6, fc7,
fc8), which is all keras_video.convert relies on. The Sports-1M checkpoint of the
seed (`c3d-pretrained.pth`, keys features.N / classifier.N, 487 classes) loads
through keras_video.models.pretrained.from_torch("c3d", ...); those weights come from Caffe and
expect BGR frames in 0..255 minus the mean (90, 98, 102), which the default
normalization "c3d" does to our RGB clips. fc6 takes exactly 8192 features only for
16 x 112 x 112 clips: other sizes build and train, but pretrained fc6 weights will not
fit them.
"""

import keras
from keras import layers

from keras_video.layers import BatchNormalization, Conv3D, ImageNormalization, MaxPooling3D
from keras_video.models.scaling import scaled_channels


def c3d(num_classes=487, input_shape=(16, 112, 112, 3), dropout=0.5, width=1.0,
        classifier_activation="softmax", normalization="c3d", batch_norm=False,
        name="c3d"):
    """The seed's C3D; `width` scales every conv and fc6 / fc7 (1.0 for its weights).

    batch_norm=True puts a BatchNorm between every conv (then without bias) and its
    ReLU, as mmaction2's C3D does with norm_cfg=BN3d: the published C3D has none, and
    its weights do not load into this variant. Trained from scratch, the BN-free C3D
    stayed at chance on the motion benchmark in every recipe tried, while this variant
    learns (experiments/RESULTS.md, motion benchmark).

    Logits come from `fc8` (float32); `classifier_activation` (None: logits) follows
    it as the float32 layer `predictions`.
    """
    if input_shape[0] is not None and input_shape[0] < 16:
        raise ValueError(f"C3D halves time 4 times: it needs at least 16 frames, not "
                         f"input_shape {tuple(input_shape)}")
    inputs = keras.Input(input_shape, name="clips")
    x = ImageNormalization(normalization, name="normalize")(inputs)

    def conv(x, filters, name):
        # stride 1, kernel 3, padding 1 on every side: Keras "same" is the same padding
        if not batch_norm:
            return Conv3D(scaled_channels(filters, width), 3, padding="same", activation="relu",
                          name=name)(x)
        x = Conv3D(scaled_channels(filters, width), 3, padding="same", use_bias=False,
                   name=name)(x)
        # conv3a -> bn3a (PyTorch: BatchNorm3d, hence its epsilon and momentum)
        x = BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"bn{name[4:]}")(x)
        return layers.ReLU(name=f"relu{name[4:]}")(x)

    x = conv(x, 64, "conv1")
    x = MaxPooling3D((1, 2, 2), name="pool1")(x)  # keeps all 16 frames
    x = conv(x, 128, "conv2")
    x = MaxPooling3D(2, name="pool2")(x)
    x = conv(x, 256, "conv3a")
    x = conv(x, 256, "conv3b")
    x = MaxPooling3D(2, name="pool3")(x)
    x = conv(x, 512, "conv4a")
    x = conv(x, 512, "conv4b")
    x = MaxPooling3D(2, name="pool4")(x)
    x = conv(x, 512, "conv5a")
    x = conv(x, 512, "conv5b")
    # pool5 pads 1 pixel on each spatial side (7x7 -> 4x4). PyTorch pads max-pools with
    # -inf; its input is post-ReLU (>= 0) and every 2x2 window keeps a real pixel, so
    # zeros give the same maxima.
    x = layers.ZeroPadding3D(((0, 0), (1, 1), (1, 1)), name="pool5_pad")(x)
    x = MaxPooling3D(2, name="pool5")(x)
    # PyTorch flattens (C, T, H, W); so must we, or a converted fc6 reads a permuted
    # input.
    x = layers.Permute((4, 1, 2, 3), name="to_channels_first")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(scaled_channels(4096, width), activation="relu", name="fc6")(x)
    x = layers.Dropout(dropout, name="drop6")(x)
    x = layers.Dense(scaled_channels(4096, width), activation="relu", name="fc7")(x)
    x = layers.Dropout(dropout, name="drop7")(x)
    x = layers.Dense(num_classes, dtype="float32", name="fc8")(x)
    if classifier_activation is not None:
        x = layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
    return keras.Model(inputs, x, name=name)
