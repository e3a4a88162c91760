"""The MAC counter against hand counts and a published figure."""

import keras
import pytest

from keras_video.models import flops
from keras_video.models.resnet2d import resnet_classifier


def test_conv3d_dense_and_time_distributed_by_hand():
    inputs = keras.Input((4, 8, 8, 3))
    x = keras.layers.Conv3D(5, 3, padding="same")(inputs)  # 4*8*8*5 outputs x 27*3
    frame = keras.Sequential([keras.Input((8, 8, 5)), keras.layers.Conv2D(2, 1)])
    x = keras.layers.TimeDistributed(frame)(x)  # 4 frames x 8*8*2 outputs x 5
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(7)(x)  # 7 x 512
    model = keras.Model(inputs, outputs)
    expected = 4 * 8 * 8 * 5 * 27 * 3 + 4 * 8 * 8 * 2 * 5 + 7 * 4 * 8 * 8 * 2
    assert flops.model_macs(model) == expected


def test_resnet18_matches_the_published_1_8_gmacs():
    # torchvision / the ResNet paper: 1.8 GFLOPs (multiply-adds) at 224x224.
    macs = flops.model_macs(resnet_classifier(18, (224, 224, 3), 1000))
    assert abs(macs / 1e9 - 1.814) < 0.005, macs


def test_dff_costs_count_a_key_frame_and_a_propagated_frame():
    from keras_video.models import build_model

    model = build_model("dff", num_classes=3, input_shape=(64, 64, 3), width=0.125,
                        feature_width=16, flow_width=0.125)
    costs = flops.dff_frame_costs(model)
    assert costs["key_gflops"] == pytest.approx(costs["feat_gflops"] + costs["task_gflops"])
    assert costs["frame_speedup"] == pytest.approx(costs["key_gflops"]
                                                   / costs["propagate_gflops"])
    # Interval 1: every frame a key frame; a long interval tends to the per-frame ratio.
    assert flops.dff_speedup(costs, 1) == pytest.approx(1.0)
    assert 1.0 < flops.dff_speedup(costs, 10) < costs["frame_speedup"]
