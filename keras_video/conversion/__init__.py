"""Weights from elsewhere: PyTorch checkpoints read without PyTorch (torch_file) and
copied into keras_video's models (torch_weights). Published checkpoints into whole models: keras_video.models.pretrained."""
