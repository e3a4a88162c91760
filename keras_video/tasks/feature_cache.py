"""Per-frame features of a frozen backbone, computed once and reused.

With a frozen backbone the frame encoder gives the same features every epoch, so the
ResNet+LSTM seed computed them once and trained the LSTM on them: minutes instead of
hours. The cache is an .npz per split under the model directory, written atomically,
so a killed run keeps what it finished.
"""

import os

import keras
import numpy as np

from keras_video import run_dir


def split_model(model):
    """(clips -> per-frame features model, temporal head) of a cnn_lstm model."""
    frames = model.get_layer("frame_features")
    return keras.Model(model.input, frames.output), model.get_layer("temporal_head")


def cached_features(feature_model, dataset, path, num_clips=None):
    """(features [N, T, D] float32, labels [N]) from `path`, or computed and saved."""
    if os.path.isfile(path):
        with np.load(path) as cache:
            if num_clips is None or len(cache["labels"]) == num_clips:
                return cache["features"], cache["labels"]
    progress = keras.utils.Progbar(num_clips, unit_name="clip")
    features, labels = [], []
    for clips, y in dataset:
        features.append(np.asarray(feature_model(clips, training=False)))
        labels.append(np.asarray(y))
        progress.add(len(labels[-1]))
    features, labels = np.concatenate(features), np.concatenate(labels)
    with run_dir.atomic_path(path) as temporary:
        np.savez(temporary, features=features, labels=labels)
    return features, labels
