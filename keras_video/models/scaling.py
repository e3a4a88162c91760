"""The channel multiplier of every model family (`width`: small versions for a CPU)."""


def scaled_channels(channels, width, minimum=1):
    """round(channels * width), at least `minimum`: the one rule every builder's `width`
    follows (the ResNets keep at least 4 channels a layer)."""
    return max(minimum, int(round(channels * width)))
