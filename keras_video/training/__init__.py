"""Training: one trainer (keras_video.training.trainer) runs any task."""
