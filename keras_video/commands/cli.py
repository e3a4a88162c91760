"""What every command shares: clean errors. (Its start-up, the choice of TensorFlow's
CPU kernels before TensorFlow is imported, is keras_video.runtime.start.)

A bad input stops a command with one line, `error: PATH: problem`, and exit status 2,
not a traceback from inside tf.data.
"""

import re
import sys

from absl import app

from keras_video.data.decode import BadSampleError

_BAD_SAMPLE = re.compile(r"BadSampleError: (.+?)(?:\\n|\n|$)")


def bad_sample_message(error):
    """The 'PATH: problem' inside a TensorFlow error raised by our decoder, or None."""
    match = _BAD_SAMPLE.search(str(getattr(error, "message", error)))
    return match.group(1) if match else None


def run(main):
    """absl's app.run, with user errors printed as one line instead of a traceback."""

    def guarded(argv):
        import tensorflow as tf
        from absl import logging

        # TensorFlow's INFO lines (SavedModel assets, sharding) bury a command's output.
        logging.set_verbosity(logging.WARNING)
        try:
            return main(argv)
        except (BadSampleError, FileNotFoundError) as e:
            _fail(str(e))
        except ValueError as e:
            _fail(str(e))
        except tf.errors.OpError as e:
            message = bad_sample_message(e)
            if message is None and isinstance(e, tf.errors.DataLossError):
                # A damaged TFRecord shard; TensorFlow's message does not name it.
                from keras_video.data import tfrecord

                message = tfrecord.locate_damage()
            if message is None:
                raise
            _fail(message)

    app.run(guarded)


def _fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)
