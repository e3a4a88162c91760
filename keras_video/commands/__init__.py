"""The commands: flags, help and a call into the library. `python -m keras_video.train`
(and evaluate, predict, convert) run them through the one-line modules of the package's
top level, which choose TensorFlow's CPU kernels before TensorFlow is imported."""
