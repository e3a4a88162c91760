"""Normalisation as the first layer of a model, so a saved model carries its own."""

import keras
from keras import ops

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# Hara et al.'s 3D-ResNets-PyTorch, get_mean_std(1, "kinetics"): RGB, on x / 255.
_KINETICS_MEAN = (0.4345, 0.4051, 0.3775)
_KINETICS_STD = (0.2768, 0.2713, 0.2737)
# The C3D seed (jfzhang95/pytorch-video-recognition, dataset.py) subtracts this from
# cv2's BGR frames, so it is in B, G, R order; no std.
_C3D_MEAN_BGR = (90.0, 98.0, 102.0)


# (mean, std) of the modes without per-channel statistics.
_SCALAR_STATS = {"unit": (0.0, 255.0), "tf": (127.5, 127.5)}


@keras.saving.register_keras_serializable(package="keras_video")
class ImageNormalization(keras.layers.Layer):
    """Maps RGB (or gray) pixel values in [0, 255] to what a backbone was trained on.

    mode:
      "unit"      x / 255                                    (our small CNN)
      "imagenet"  (x / 255 - mean) / std, ImageNet RGB stats (torchvision weights,
                  keras.applications "torch" mode)
      "tf"        x / 127.5 - 1                              (keras.applications "tf")
      "caffe"     RGB -> BGR, minus the ImageNet BGR mean    (keras.applications "caffe")
      "kinetics"  (x / 255 - mean) / std, Kinetics RGB stats of Hara et al.'s
                  3D-ResNets-PyTorch (its r3d / r2plus1d weights)
      "c3d"       RGB -> BGR, minus (90, 98, 102) in B, G, R order, no std: the C3D
                  Sports-1M weights as the PyTorch C3D seed feeds them
      "none"      unchanged (networks that rescale internally, e.g. EfficientNet; or
                  inputs that are not images, such as optical flow: any channel count)
    A one-channel (grayscale) input uses the mean of the three channel statistics.
    "unit", "tf" and "none" have no per-channel statistics and take any channel count
    (uint8 optical flow, keras_video.data.optical_flow, with "tf": flow / bound).
    """

    MODES = ("unit", "imagenet", "tf", "caffe", "kinetics", "c3d", "none")

    def __init__(self, mode="unit", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, not {mode!r}")
        self.mode = mode

    def build(self, input_shape):
        channels = input_shape[-1]
        if self.mode == "none":
            return  # no per-channel statistics: any channels (e.g. optical flow's 2)
        if self.mode in _SCALAR_STATS:  # the same for every channel: any channels
            mean, std = _SCALAR_STATS[self.mode]
            self._mean, self._scale = [mean] * channels, [1.0 / std] * channels
            return
        if channels not in (1, 3):
            raise ValueError(f"expected 1 or 3 channels, got input shape {input_shape}")
        if self.mode == "imagenet":
            mean = [m * 255.0 for m in _IMAGENET_MEAN]
            std = [s * 255.0 for s in _IMAGENET_STD]
        elif self.mode == "kinetics":
            mean = [m * 255.0 for m in _KINETICS_MEAN]
            std = [s * 255.0 for s in _KINETICS_STD]
        elif self.mode == "caffe":
            mean, std = list(_CAFFE_MEAN_BGR), [1.0, 1.0, 1.0]
        else:  # c3d
            mean, std = list(_C3D_MEAN_BGR), [1.0, 1.0, 1.0]
        if channels == 1:
            mean, std = [sum(mean) / 3], [sum(std) / 3]
        self._mean = mean
        self._scale = [1.0 / s for s in std]

    def call(self, x):
        x = ops.cast(x, self.compute_dtype)
        if self.mode == "none":
            return x
        if self.mode in ("caffe", "c3d") and x.shape[-1] == 3:
            x = ops.flip(x, axis=-1)
        mean = ops.convert_to_tensor(self._mean, dtype=self.compute_dtype)
        scale = ops.convert_to_tensor(self._scale, dtype=self.compute_dtype)
        return (x - mean) * scale

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
