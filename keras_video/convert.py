"""`python -m keras_video.convert`: a PyTorch checkpoint into a Keras file (keras_video.commands.convert)."""

if __name__ == "__main__":
    from keras_video import runtime

    runtime.start()  # TensorFlow's CPU kernels are chosen before it is imported
    from keras_video.commands import convert

    convert.run()
