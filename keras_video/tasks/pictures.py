"""Pictures of a task for people and TensorBoard: clip montages, flow colours,
segmentation overlays, and the prediction plot of a held-out set (the regression
scatter or the confusion matrix, drawn by keras_video.plots with matplotlib)."""

import cv2
import keras
import numpy as np
import tensorflow as tf

from keras_video import plots
from keras_video.data import optical_flow


def flow_colours(flow):
    """Quantized flow [..., 2] (uint8, 127.5 = still, keras_video.data.optical_flow)
    -> uint8 RGB in the usual flow colour code: hue the direction, brightness the
    speed (relative to the fastest pixel)."""
    f = optical_flow.dequantize(np.asarray(flow), 1.0)
    magnitude, angle = cv2.cartToPolar(np.ascontiguousarray(f[..., 0]),
                                       np.ascontiguousarray(f[..., 1]))
    value = magnitude / max(float(magnitude.max()), 1e-6) * 255.0
    hsv = np.stack([angle * (90.0 / np.pi), np.full_like(value, 255.0), value], -1)
    shape = hsv.shape
    rgb = cv2.cvtColor(hsv.reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_HSV2RGB)
    return rgb.reshape(shape)


def clip_montage(clip, columns=10):
    """A clip [T, H, W, C] (0..255) as one uint8 RGB image, frames in a grid; a flow
    clip (C = 2) in flow colours."""
    clip = np.asarray(clip)
    clip = flow_colours(clip) if clip.shape[-1] == 2 else np.clip(clip, 0,
                                                                  255).astype(np.uint8)
    if clip.shape[-1] == 1:
        clip = np.repeat(clip, 3, axis=-1)
    t, h, w, _ = clip.shape
    rows = -(-t // columns)
    grid = np.full((rows * (h + 2), columns * (w + 2), 3), 128, np.uint8)
    for i, frame in enumerate(clip):
        r, c = divmod(i, columns)
        grid[r * (h + 2) + 1:r * (h + 2) + 1 + h,
             c * (w + 2) + 1:c * (w + 2) + 1 + w] = frame
    return grid


def confusion_matrix(y_true, y_pred, num_classes):
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.ravel(y_true), np.ravel(y_pred)), 1)
    return matrix


def prediction_image(task, y_true, y_pred, class_names=None):
    """The picture of a set of predictions: a scatter plot or a confusion matrix."""
    if task == "regression":
        return plots.scatter_plot(y_true, y_pred)
    num_classes = np.asarray(y_pred).shape[-1]
    matrix = confusion_matrix(y_true, np.argmax(y_pred, axis=-1), num_classes)
    return plots.confusion_image(matrix, class_names)


class ImageSummaries(keras.callbacks.Callback):
    """Logs a sample input clip once, and the prediction picture after every epoch."""

    def __init__(self, log_dir, task, sample_clip, val_clips, val_labels, class_names=None,
                 predict_fn=None):
        super().__init__()
        self.writer = tf.summary.create_file_writer(log_dir)
        self.task, self.class_names = task, class_names
        self.sample_clip = sample_clip
        self.val_clips, self.val_labels = val_clips, val_labels
        self.predict_fn = predict_fn

    def on_train_begin(self, logs=None):
        with self.writer.as_default():
            tf.summary.image("input/sample_clip", clip_montage(self.sample_clip)[None],
                             step=0)
        self.writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        predict = self.predict_fn or (lambda x: self.model.predict(x, verbose=0))
        y_pred = predict(self.val_clips)
        image = prediction_image(self.task, self.val_labels, y_pred, self.class_names)
        name = "val/scatter" if self.task == "regression" else "val/confusion_matrix"
        with self.writer.as_default():
            tf.summary.image(name, image[None], step=epoch)
        self.writer.flush()


def class_colors(num_classes):
    """RGB uint8 colour per class: background black, then hues spread round the wheel."""
    hsv = np.array([[[int(180 * i / max(1, num_classes - 1)) % 180, 255, 255]
                     for i in range(num_classes)]], np.uint8)
    colors = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]
    colors[0] = 0
    return colors


def overlay(frame, labels, num_classes, alpha=0.5, key=False):
    """The frame (RGB uint8) with the label map alpha-blended in its class colours (the
    labels are resized to the frame, nearest neighbour); a key frame gets a white border
    and "KEY"."""
    frame = np.asarray(frame, np.uint8)
    height, width = frame.shape[:2]
    labels = np.asarray(labels)
    if labels.shape != (height, width):
        labels = cv2.resize(labels.astype(np.uint8), (width, height),
                            interpolation=cv2.INTER_NEAREST)
    colored = class_colors(num_classes)[np.clip(labels, 0, num_classes - 1)]
    image = cv2.addWeighted(frame, 1.0 - alpha, colored, alpha, 0.0)
    if key:
        thickness = max(2, min(height, width) // 40)
        cv2.rectangle(image, (0, 0), (width - 1, height - 1), (255, 255, 255), thickness)
        cv2.putText(image, "KEY", (thickness + 2, thickness + 14), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def draw_detections(frame, detections, class_names, key=False, min_score=0.3):
    """The frame (RGB uint8) with each detection scoring at least `min_score` drawn: a
    box in its class colour with "name score" above it; a key frame gets a white
    border and "KEY". detections: {"boxes" [n, 4] (x1, y1, x2, y2 in the frame's
    pixels), "scores" [n], "labels" [n] (1..C)}."""
    image = np.array(frame, np.uint8)
    colors = class_colors(len(class_names) + 1)
    height, width = image.shape[:2]
    thickness = max(1, min(height, width) // 200)
    scale = max(0.35, min(height, width) / 600)
    for box, score, label in zip(detections["boxes"], detections["scores"],
                                 detections["labels"]):
        if score < min_score:
            continue
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = tuple(int(c) for c in colors[int(label)])
        cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        text = f"{class_names[int(label) - 1]} {score:.2f}"
        (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        top = max(y1 - th - 4, 0)
        cv2.rectangle(image, (x1, top), (x1 + tw + 2, top + th + 4), color, -1)
        cv2.putText(image, text, (x1 + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), 1, cv2.LINE_AA)
    if key:
        border = max(2, min(height, width) // 40)
        cv2.rectangle(image, (0, 0), (width - 1, height - 1), (255, 255, 255), border)
        cv2.putText(image, "KEY", (border + 2, border + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return image
