"""keras_video: video recognition in Keras 3 on TensorFlow."""
