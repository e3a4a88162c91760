"""`python -m keras_video.export`: a run as TensorFlow Lite or a SavedModel (commands.export)."""

if __name__ == "__main__":
    from keras_video import runtime

    runtime.start()  # TensorFlow's CPU kernels are chosen before it is imported
    from keras_video.commands import export

    export.run()
