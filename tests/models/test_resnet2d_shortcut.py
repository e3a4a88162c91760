"""The 2D ResNet's strided shortcut: the same function as a strided 1x1 conv, by a route
whose gradient TensorFlow's oneDNN computes without crashing at narrow widths."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT
from keras_video.models import resnet2d

NARROW_GRADIENTS = """
import numpy as np, tensorflow as tf
from keras_video.models import resnet2d
net = resnet2d.resnet_backbone(18, (64, 64, 3), name="r", width=0.125)
x = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)), tf.float32)
for _ in range(3):
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(net(x, training=True) ** 2)
    tape.gradient(loss, net.trainable_variables)
print("gradients done")
"""


@pytest.mark.slow
def test_a_narrow_resnet_trains_eagerly_without_crashing():
    """Width 0.125 gives downsample shortcuts of 8 input channels; TensorFlow's oneDNN
    gradient of such a stride-2 1x1 conv corrupted memory (resnet2d._conv reads every
    second pixel, then convolves at stride 1). In a fresh process: a crash fails it."""
    result = subprocess.run([sys.executable, "-c", NARROW_GRADIENTS], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "gradients done" in result.stdout


def test_the_strided_shortcut_is_a_strided_1x1_conv():
    net = resnet2d.resnet_backbone(18, (32, 32, 3), name="r", width=0.25)
    conv = net.get_layer("layer2_0_downsample_0")
    x = np.random.default_rng(1).normal(size=(2, 16, 16, conv.kernel.shape[2])).astype("f4")
    routed = conv(net.get_layer("layer2_0_downsample_0_subsample")(x))
    expected = tf.nn.conv2d(x, conv.kernel, 2, "VALID")
    np.testing.assert_allclose(routed, expected, atol=1e-5)
