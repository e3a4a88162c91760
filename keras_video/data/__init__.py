"""Data: sources, decoding, sampling, the tf.data pipeline and synthetic generators."""
