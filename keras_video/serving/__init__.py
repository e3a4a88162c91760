"""Serving: the SavedModel a run exports (uint8 frames in, preprocessing inside) and
the streaming engine that runs a DFF model key frame by key frame."""
