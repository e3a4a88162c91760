"""Metrics of a model on a data set: RMSE / MAE for regression, top-1 / top-5 for
classification, plus the matching picture."""

import numpy as np

from keras_video import summaries


def predict_all(predict_batch, dataset):
    """(labels, predictions) over a whole batched dataset of (clips, labels)."""
    labels, preds = [], []
    for clips, y in dataset:
        preds.append(np.asarray(predict_batch(clips)))
        labels.append(np.asarray(y))
    return np.concatenate(labels), np.concatenate(preds)


def metrics(task, labels, predictions):
    if task == "regression":
        err = np.ravel(predictions) - np.ravel(labels)
        return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err))),
                "num_clips": int(err.size)}
    top = np.argsort(-predictions, axis=-1)
    labels = np.ravel(labels)
    return {"top1": float(np.mean(top[:, 0] == labels)),
            "top5": float(np.mean((top[:, :5] == labels[:, None]).any(axis=1))),
            "num_clips": int(labels.size)}


def evaluate(model, dataset, task, class_names=None):
    """(metrics dict, picture) of `model` on `dataset`."""
    labels, preds = predict_all(lambda x: model(x, training=False), dataset)
    image = summaries.prediction_image(task, labels, preds, class_names)
    return metrics(task, labels, preds), image
