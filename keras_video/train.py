"""`python -m keras_video.train`: train a model (keras_video.commands.train)."""

if __name__ == "__main__":
    from keras_video import runtime

    runtime.start()  # TensorFlow's CPU kernels are chosen before it is imported
    from keras_video.commands import train

    train.run()
