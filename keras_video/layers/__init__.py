"""Custom Keras layers of keras_video; each has get_config and round-trips through saving."""

from keras_video.layers.batch_norm import BatchNormalization
from keras_video.layers.conv3d import Conv3D, MaxPooling3D
from keras_video.layers.flow_warp import FlowWarp
from keras_video.layers.frame_difference import FrameDifference
from keras_video.layers.preprocessing import ImageNormalization
from keras_video.layers.proposals import RPNProposals
from keras_video.layers.ps_roi_pooling import PSRoIPooling
from keras_video.layers.spatial_soft_argmax import SpatialSoftArgmax
from keras_video.layers.upsample import BilinearUpsample

__all__ = ["BatchNormalization", "BilinearUpsample", "Conv3D", "FlowWarp", "FrameDifference",
           "ImageNormalization", "MaxPooling3D", "PSRoIPooling", "RPNProposals",
           "SpatialSoftArgmax"]
