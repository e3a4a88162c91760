"""Train a model: python -m keras_video.train --model=cnn_lstm [--flags].

With no flag but --model it generates the default data set, trains, evaluates on the
held-out clips, exports a SavedModel and writes TensorBoard logs under --model_dir.
A killed run started again with the same --model_dir resumes where it stopped.
`--help` lists every setting by group, with the models it applies to.

The command is a thin layer: the settings are keras_video.training.configs.TrainConfig, the
work is keras_video.training.trainer.train, which runs the task the run needs
(keras_video.tasks).
"""

import sys
import typing


from absl import flags

from keras_video.commands import cli
from keras_video.training import configs
from keras_video.training.trainer import train


def define_flags():
    """One absl flag per setting (keras_video.training.configs); unset flags keep the
    experiment's value."""
    for name, field in configs.setting_fields().items():
        default = field.default
        help_text = f"{field.metadata['help']} (unset: the experiment's, else {default!r})"
        if isinstance(default, bool) or field.type == typing.Optional[bool]:
            flags.DEFINE_boolean(name, None, help_text)
        elif isinstance(default, int):
            flags.DEFINE_integer(name, None, help_text)
        elif isinstance(default, float):
            flags.DEFINE_float(name, None, help_text)
        elif isinstance(default, tuple):
            flags.DEFINE_list(name, None, help_text)
        else:
            flags.DEFINE_string(name, None, help_text)
    flags.DEFINE_boolean("overwrite", False, "train again even if model_dir holds a "
                         "finished run")


def config_from_flags(flag_values):
    overrides = {}
    for name, field in configs.setting_fields().items():
        value = flag_values[name].value
        if value is None or name == "experiment":
            continue
        if isinstance(field.default, tuple):
            value = tuple(int(v) for v in value)
        overrides[name] = value
    return configs.make_config(flag_values["experiment"].value or "", overrides)


def main(argv):
    del argv
    train(config_from_flags(flags.FLAGS), overwrite=flags.FLAGS.overwrite)


HELP_FLAGS = ("--help", "-h", "-?", "--helpshort")


def run():
    """The command line: flags, then main (a bad input is one line, not a traceback)."""
    if set(HELP_FLAGS) & set(sys.argv[1:]):
        # Grouped, with the models each setting applies to (absl lists them flat).
        print(__doc__ + "\nusage: python -m keras_video.train [--setting=value ...]\n"
              + configs.help_text() + "\n\n--overwrite  train again even if --model_dir "
              "holds a finished run\n--helpfull  every flag, absl's own included")
        sys.exit(0)
    define_flags()
    cli.run(main)
