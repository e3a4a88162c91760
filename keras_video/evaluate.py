"""`python -m keras_video.evaluate`: evaluate a training run (keras_video.commands.evaluate)."""

if __name__ == "__main__":
    from keras_video import runtime

    runtime.start()  # TensorFlow's CPU kernels are chosen before it is imported
    from keras_video.commands import evaluate

    evaluate.run()
