"""python -m keras_video.data.to_tfrecord: any --data source into TFRecord shards
(keras_video.data.to_tfrecord, whose docstring lists the flags)."""

from absl import flags

from keras_video.commands import cli
from keras_video.data import to_tfrecord
from keras_video.data.generate import parse_size


def define_flags():
    flags.DEFINE_string("data", None, "what to convert (any --data value, or "
                        "synthetic:NAME with --num)", required=True)
    flags.DEFINE_string("out", None, "output folder (new or empty)", required=True)
    flags.DEFINE_integer("shards", 8, "number of .tfrecord files (at most one per clip)")
    flags.DEFINE_string("resize", None, "store frames resized to HxW (or N: NxN) "
                        "instead of at their own size")
    flags.DEFINE_integer("quality", 95, "JPEG quality of re-encoded frames")
    flags.DEFINE_enum("on_bad_sample", "error", ["error", "skip"], "what a bad file does")
    flags.DEFINE_integer("seed", 0, "seed of the shard order (and of synthetic data)")
    flags.DEFINE_integer("num", None, "clips to generate for synthetic:NAME")


def main(argv):
    del argv
    FLAGS = flags.FLAGS
    resize = parse_size(FLAGS.resize, "--resize") if FLAGS.resize else None
    manifest = to_tfrecord.convert(FLAGS.data, FLAGS.out, FLAGS.shards, resize, FLAGS.quality,
                       FLAGS.on_bad_sample, FLAGS.seed, FLAGS.num)
    print(f"\n{len(manifest['clips'])} clips in {len(manifest['shards'])} shards: "
          f"{FLAGS.out} (read with --data=tfrecord:{FLAGS.out})"
          + (f"; {len(manifest['skipped'])} skipped" if manifest["skipped"] else ""))


def run():
    """The command line: flags, then main (a bad input is one line, not a traceback)."""
    define_flags()
    cli.run(main)
