"""SavedModel export for serving: uint8 RGB frames in, predictions out.

The `serve` signature takes frames [batch, frames, height, width, 3] uint8 RGB at any
height and width (the frame count is the model's), resizes them to the clip's decode
size (area averaging when shrinking, as the pipeline's cv2.INTER_AREA; bilinear when
growing), converts to gray if the model reads gray, takes the evaluation crop (the
centre view of keras_video.data.transforms) and calls the model, whose first layer
normalises.
A client only decodes frames and calls it. `meta.json` beside it tells the clip recipe,
the task and the class names, so `keras_video.predict` needs nothing else.

A flow model (ClipSpec modality "flow") cannot take frames: its DIS optical flow is
OpenCV's, not a TensorFlow op. Its `serve` takes the quantized flow
[batch, frames, h, w, 2] uint8 at the clip's decode size, as
keras_video.data.optical_flow.quantized_flow(frames at the decode size, flow_bound)
gives it (meta.json has both), and only takes the evaluation crop.
"""

import json
import os

import keras
import tensorflow as tf

from keras_video.data import transforms
from keras_video.layers import FlowWarp
from keras_video.models import rfcn
from keras_video.models.dff import dff_parts, feature_stride

META = "meta.json"


def serving_fn(model, clip):
    """uint8 [B, T, H, W, 3] -> model output, resized, converted and cropped like the
    evaluation pipeline (decode size, then the evaluation view of clip.for_eval())."""
    height, width = clip.decode_size
    view = clip.for_eval()

    def serve_flow(flow):
        x = tf.reshape(flow, [-1, height, width, 2])
        x = transforms.eval_views(x, view)[0]
        x = tf.reshape(x, [-1, *clip.shape])
        return {"predictions": model(x, training=False)}

    def serve(frames):
        shape = tf.shape(frames)
        batch, steps = shape[0], shape[1]
        x = tf.reshape(frames, tf.concat([[-1], shape[2:]], axis=0))
        x = transforms.resize_like_opencv(x, (height, width))
        if clip.grayscale:
            x = tf.image.rgb_to_grayscale(x)
        x = transforms.eval_views(x, view)[0]  # the centre crop, as `evaluate` reads
        x = tf.reshape(x, tf.stack([batch, steps, *clip.size, clip.channels]))
        return {"predictions": model(x, training=False)}

    return serve_flow if clip.modality == "flow" else serve


def input_signature(clip):
    """The `serve` input: uint8 RGB frames of any size, or a flow model's quantized flow
    at the decode size."""
    if clip.modality == "flow":
        return tf.TensorSpec([None, clip.num_frames, *clip.decode_size, 2], tf.uint8,
                             name="frames")
    return tf.TensorSpec([None, clip.num_frames, None, None, 3], tf.uint8, name="frames")


def export_saved_model(model, clip, export_dir, task, class_names=None, extra=None):
    """Writes the SavedModel and its meta.json to export_dir; returns export_dir."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serving_fn(model, clip),
                         input_signature=[input_signature(clip)])
    archive.write_out(export_dir, verbose=False)
    meta = {"clip": clip.to_dict(), "task": task, "class_names": class_names,
            **(extra or {})}
    with open(os.path.join(export_dir, META), "w") as f:
        json.dump(meta, f, indent=2)
    return export_dir


def _frames_to_model(frames, size):
    """uint8 [B, H, W, 3] -> float32 [B, height, width, 3], resized as
    the clip models' serve does (transforms.resize_like_opencv)."""
    return tf.ensure_shape(transforms.resize_like_opencv(frames, size),
                           [None, *size, 3])


def export_dff(model, export_dir, class_names, extra=None):
    """A SavedModel whose signatures are DFF's parts, so a client can run the key-frame
    schedule itself (frames uint8 RGB [B, H, W, 3], any size, resized to the model's).
    For a segmentation model (dff, frame_seg) OUT is {"probabilities" [B, H, W, K]};
    for a detector (dff_rfcn, rfcn) it is {"boxes" [B, M, 4] (x1, y1, x2, y2 in pixels
    of the model's input size, meta.json's frame_size), "scores" [B, M], "labels"
    [B, M] (1..C, class_names[label - 1]), "count" [B]} (keras_video.models.rfcn):

      feature(frame) -> {"features"}                       N_feat, once per key frame
      task(features) -> OUT                                N_task (a key frame's output)
      propagate(frame, key_features, key_frame) -> OUT
                                 flow + warp + scale + N_task (dff models only)
      propagate_flow(key_features, flow) -> OUT
                                 warp by a given flow on the feature grid (in feature
                                 pixels, e.g. OpenCV's DIS flow) + N_task
      per_frame(frame) -> OUT                              N_task(N_feat(frame))

    meta.json beside it holds the task ("segmentation" or "detection"), frame size,
    feature shape and stride, the signatures and class names.
    """
    n_feat, n_flow, n_task = dff_parts(model)
    size = tuple(n_feat.input.shape[1:3])
    feature_shape = tuple(n_feat.output.shape[1:])
    warp = FlowWarp(name="export_warp")
    detection = rfcn.is_detector(model)
    if detection:
        detect = rfcn.detector_of(model)

        def head(features):
            return detect(n_task(features, training=False))
    else:
        def head(features):
            return {"probabilities": n_task(features, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    frame_spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name="frame")

    def feature(frame):
        return {"features": n_feat(_frames_to_model(frame, size), training=False)}

    def per_frame(frame):
        return head(n_feat(_frames_to_model(frame, size), training=False))

    def propagate_flow(key_features, flow):
        return head(warp([key_features, flow]))

    features_spec = tf.TensorSpec([None, *feature_shape], tf.float32, name="key_features")
    archive.add_endpoint("feature", feature, input_signature=[frame_spec])
    archive.add_endpoint("task", head, input_signature=[
        tf.TensorSpec([None, *feature_shape], tf.float32, name="features")])
    archive.add_endpoint("propagate_flow", propagate_flow, input_signature=[
        features_spec, tf.TensorSpec([None, *feature_shape[:2], 2], tf.float32, name="flow")])
    archive.add_endpoint("per_frame", per_frame, input_signature=[frame_spec])
    if n_flow is not None:
        def propagate(frame, key_features, key_frame):
            current, key = _frames_to_model(frame, size), _frames_to_model(key_frame, size)
            flow, scale = n_flow([current, key], training=False)
            return head(warp([key_features, flow]) * scale)

        archive.add_endpoint("propagate", propagate, input_signature=[
            frame_spec, features_spec,
            tf.TensorSpec([None, None, None, 3], tf.uint8, name="key_frame")])
    archive.write_out(export_dir, verbose=False)
    meta = {"task": "detection" if detection else "segmentation", "frame_size": list(size),
            "feature_shape": list(feature_shape), "feature_stride": feature_stride(model),
            "class_names": class_names,
            "signatures": ["feature", "task", "propagate_flow", "per_frame"]
                          + (["propagate"] if n_flow else []),
            **(extra or {})}
    with open(os.path.join(export_dir, META), "w") as f:
        json.dump(meta, f, indent=2)
    return export_dir


def load_meta(export_dir):
    path = os.path.join(export_dir, META)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; is {export_dir} a keras_video export?")
    with open(path) as f:
        return json.load(f)
