"""Plain PyTorch C3D, R3D and R(2+1)D with the published module names.

Written from the published architectures so that their state_dict keys equal the
published files':
  C3D       jfzhang95/pytorch-video-recognition network/C3D_model.py (conv1 .. fc8)
  resnet    kenshohara/3D-ResNets-PyTorch models/resnet.py
  resnet2p1d                 the same repository's models/resnet2p1d.py
Two test-only conveniences, neither changing a key: C3D takes a channel `width` and
its fc6 input size (the seed hard-codes 64/128/.../4096 and 8192).
Only the tests import this file.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

BLOCKS_PER_STAGE = {
    10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3),
    101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3),
}


class C3D(nn.Module):
    def __init__(self, num_classes, width=1.0, flat_features=8192, batch_norm=False):
        super().__init__()
        c = lambda n: max(1, int(round(n * width)))  # noqa: E731
        # batch_norm: mmaction2's C3D with norm_cfg=BN3d (conv without bias, BN, ReLU)
        self.batch_norm = batch_norm
        convs = {"1": (3, 64), "2": (64, 128), "3a": (128, 256), "3b": (256, 256),
                 "4a": (256, 512), "4b": (512, 512), "5a": (512, 512), "5b": (512, 512)}
        for index, (cin, cout) in convs.items():
            cin = cin if index == "1" else c(cin)
            setattr(self, f"conv{index}", nn.Conv3d(cin, c(cout), kernel_size=(3, 3, 3),
                                                    padding=(1, 1, 1), bias=not batch_norm))
            if batch_norm:
                setattr(self, f"bn{index}", nn.BatchNorm3d(c(cout)))
        self.pool1 = nn.MaxPool3d(kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.pool2 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.pool3 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.pool4 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.pool5 = nn.MaxPool3d(kernel_size=(2, 2, 2), stride=(2, 2, 2), padding=(0, 1, 1))
        self.fc6 = nn.Linear(flat_features, c(4096))
        self.fc7 = nn.Linear(c(4096), c(4096))
        self.fc8 = nn.Linear(c(4096), num_classes)
        self.dropout = nn.Dropout(p=0.5)
        self.relu = nn.ReLU()

    def block(self, x, index):
        x = getattr(self, f"conv{index}")(x)
        if self.batch_norm:
            x = getattr(self, f"bn{index}")(x)
        return self.relu(x)

    def forward(self, x):
        x = self.pool1(self.block(x, "1"))
        x = self.pool2(self.block(x, "2"))
        x = self.pool3(self.block(self.block(x, "3a"), "3b"))
        x = self.pool4(self.block(self.block(x, "4a"), "4b"))
        x = self.pool5(self.block(self.block(x, "5a"), "5b"))
        x = x.view(x.size(0), -1)  # the seed: x.view(-1, 8192)
        x = self.dropout(self.relu(self.fc6(x)))
        x = self.dropout(self.relu(self.fc7(x)))
        return self.fc8(x)


# The seed's __load_pretrained_weights: key in c3d-pretrained.pth -> C3D module key.
# classifier.6 (fc8, 487 Sports-1M classes) is in the file too; the seed drops it.
SEED_FILE_KEYS = {
    "features.0": "conv1", "features.3": "conv2", "features.6": "conv3a",
    "features.8": "conv3b", "features.11": "conv4a", "features.13": "conv4b",
    "features.16": "conv5a", "features.18": "conv5b", "classifier.0": "fc6",
    "classifier.3": "fc7", "classifier.6": "fc8",
}


def conv3x3x3(in_planes, out_planes, stride=1):
    return nn.Conv3d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1x1(in_planes, out_planes, stride=1):
    return nn.Conv3d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def conv1x3x3(in_planes, mid_planes, stride=1):
    return nn.Conv3d(in_planes, mid_planes, kernel_size=(1, 3, 3), stride=(1, stride, stride),
                     padding=(0, 1, 1), bias=False)


def conv3x1x1(mid_planes, planes, stride=1):
    return nn.Conv3d(mid_planes, planes, kernel_size=(3, 1, 1), stride=(stride, 1, 1),
                     padding=(1, 0, 0), bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3x3(planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = conv3x3x3(planes, planes, stride)  # the stride sits on the 3x3x3
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = conv1x1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def _mid(in_planes, planes, t=3, k=3):
    return (in_planes * planes * t * k * k) // (in_planes * k * k + t * planes)


class BasicBlock2p1d(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        mid1 = _mid(in_planes, planes)
        self.conv1_s = conv1x3x3(in_planes, mid1, stride)
        self.bn1_s = nn.BatchNorm3d(mid1)
        self.conv1_t = conv3x1x1(mid1, planes, stride)
        self.bn1_t = nn.BatchNorm3d(planes)
        mid2 = _mid(planes, planes)
        self.conv2_s = conv1x3x3(planes, mid2)
        self.bn2_s = nn.BatchNorm3d(mid2)
        self.conv2_t = conv3x1x1(mid2, planes)
        self.bn2_t = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1_s(self.conv1_s(x)))
        out = self.relu(self.bn1_t(self.conv1_t(out)))
        out = self.relu(self.bn2_s(self.conv2_s(out)))
        out = self.bn2_t(self.conv2_t(out))
        return self.relu(out + residual)


class Bottleneck2p1d(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm3d(planes)
        mid = _mid(planes, planes)
        self.conv2_s = conv1x3x3(planes, mid, stride)
        self.bn2_s = nn.BatchNorm3d(mid)
        self.conv2_t = conv3x1x1(mid, planes, stride)
        self.bn2_t = nn.BatchNorm3d(planes)
        self.conv3 = conv1x1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2_s(self.conv2_s(out)))
        out = self.relu(self.bn2_t(self.conv2_t(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class ResNet(nn.Module):
    """resnet.py's ResNet, or resnet2p1d.py's with factorised=True."""

    def __init__(self, depth, factorised=False, conv1_t_size=7, conv1_t_stride=1,
                 no_max_pool=False, shortcut_type="B", widen_factor=1.0, n_classes=400):
        super().__init__()
        if depth >= 50:
            block = Bottleneck2p1d if factorised else Bottleneck
        else:
            block = BasicBlock2p1d if factorised else BasicBlock
        block_inplanes = [int(x * widen_factor) for x in (64, 128, 256, 512)]
        self.in_planes = block_inplanes[0]
        self.no_max_pool = no_max_pool
        self.factorised = factorised
        if factorised:
            mid = _mid(3, self.in_planes, conv1_t_size, 7)
            self.conv1_s = nn.Conv3d(3, mid, kernel_size=(1, 7, 7), stride=(1, 2, 2),
                                     padding=(0, 3, 3), bias=False)
            self.bn1_s = nn.BatchNorm3d(mid)
            self.conv1_t = nn.Conv3d(mid, self.in_planes, kernel_size=(conv1_t_size, 1, 1),
                                     stride=(conv1_t_stride, 1, 1),
                                     padding=(conv1_t_size // 2, 0, 0), bias=False)
            self.bn1_t = nn.BatchNorm3d(self.in_planes)
        else:
            self.conv1 = nn.Conv3d(3, self.in_planes, kernel_size=(conv1_t_size, 7, 7),
                                   stride=(conv1_t_stride, 2, 2),
                                   padding=(conv1_t_size // 2, 3, 3), bias=False)
            self.bn1 = nn.BatchNorm3d(self.in_planes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        for stage, (blocks, planes) in enumerate(
            zip(BLOCKS_PER_STAGE[depth], block_inplanes), start=1
        ):
            layer = self._make_layer(block, planes, blocks, shortcut_type, 1 if stage == 1 else 2)
            setattr(self, f"layer{stage}", layer)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(block_inplanes[3] * block.expansion, n_classes)

    def _downsample_basic_block(self, x, planes, stride):
        out = F.avg_pool3d(x, kernel_size=1, stride=stride)
        zero_pads = torch.zeros(out.size(0), planes - out.size(1), out.size(2), out.size(3),
                                out.size(4))
        return torch.cat([out.data, zero_pads], dim=1)

    def _make_layer(self, block, planes, blocks, shortcut_type, stride=1):
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            if shortcut_type == "A":
                downsample = partial(self._downsample_basic_block,
                                     planes=planes * block.expansion, stride=stride)
            else:
                downsample = nn.Sequential(
                    conv1x1x1(self.in_planes, planes * block.expansion, stride),
                    nn.BatchNorm3d(planes * block.expansion))
        layers = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes * block.expansion
        layers += [block(self.in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        if self.factorised:
            x = self.relu(self.bn1_s(self.conv1_s(x)))
            x = self.relu(self.bn1_t(self.conv1_t(x)))
        else:
            x = self.relu(self.bn1(self.conv1(x)))
        if not self.no_max_pool:
            x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        return self.fc(x.view(x.size(0), -1))
