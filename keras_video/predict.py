"""`python -m keras_video.predict`: predict with an exported model (keras_video.commands.predict)."""

if __name__ == "__main__":
    from keras_video import runtime

    runtime.start()  # TensorFlow's CPU kernels are chosen before it is imported
    from keras_video.commands import predict

    predict.run()
