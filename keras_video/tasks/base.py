"""A Task owns what differs between kinds of work; the trainer does the rest once.

    task = TaskClass(config, strategy, data_dir, output_dir)  reads (or generates) its
                            data; output_dir is where this process writes (the run
                            directory, or a non-chief worker's throw-away folder)
    task.record()           what config.json keeps beyond the settings (clip, classes)
    task.steps_per_epoch()
    task.build_model()      the registry's model (keras_video.models.build_model)
    task.compile(model, steps_per_epoch)   losses, metrics, optimizer; returns the model
                            `fit` trains (the model itself, or a part of it)
    task.callbacks(logs_dir, model)        the pictures it writes to TensorBoard
    task.fit(fitted, callbacks, steps_per_epoch)   staged training lives here (DFF's
                            flow pre-training, a frozen backbone's feature cache)
    task.evaluate(best)     held-out (metrics, picture or None): its protocol; the
                            picture is written as task.picture_name
    task.export(best, folder)              its SavedModel signatures and meta.json
    task.summary()          the lines of the end-of-run summary that are its own

keras_video.training.trainer runs any task: the run directory, seed, precision,
strategy, resume, the best-model checkpoint, config.json, metrics.json, the summary.
A new kind of work is a new Task registered in keras_video.tasks, not a new driver.
"""

import os

from keras_video import optimizers, plots
from keras_video.conversion.torch_weights import head_layer


class Task:
    name = ""
    # Model families this task serves whatever the data (empty: chosen by the data).
    models = ()
    picture_name = ""  # the held-out picture's file in the run directory

    def __init__(self, config, strategy, data_dir, output_dir):
        self.config = config
        self.strategy = strategy
        self.data_dir = data_dir
        self.output_dir = output_dir

    def record(self):
        return {}

    def steps_per_epoch(self):
        raise NotImplementedError

    def build_model(self):
        raise NotImplementedError

    def compile(self, model, steps_per_epoch):
        raise NotImplementedError

    def callbacks(self, logs_dir, model):
        return []

    def fit(self, fitted, callbacks, steps_per_epoch):
        raise NotImplementedError

    def evaluate(self, best):
        raise NotImplementedError

    def export(self, best, folder):
        raise NotImplementedError

    def write_picture(self, picture, folder):
        """Writes the RGB picture `evaluate` returned as folder/picture_name."""
        return plots.save_png(picture, os.path.join(folder, self.picture_name))

    def summary(self):
        return []

    # Shared by the tasks -------------------------------------------------------------

    def optimizer(self, steps_per_epoch, model):
        """The run's optimizer; the head (`head_layer`) learns at lr x
        --head_lr_multiplier."""
        multipliers = None
        if self.config.optimization.head_lr_multiplier != 1.0:
            head = head_layer(model)
            multipliers = {v.path: self.config.optimization.head_lr_multiplier
                           for v in head.trainable_weights}
        return optimizers.make_optimizer(self.config.optimization, steps_per_epoch,
                                         multipliers)

    def jit_compile(self):
        """Keras's compile(jit_compile=...): unset leaves it to Keras ("auto": XLA with a
        GPU, none on a CPU)."""
        jit_compile = self.config.runtime.jit_compile
        return "auto" if jit_compile is None else jit_compile

    def verbose(self):
        return 2 if self.config.runtime.quiet else 1


def compile_model(task, model, steps_per_epoch, loss, metrics):
    """model.compile with the task's optimizer and XLA setting."""
    model.compile(optimizer=task.optimizer(steps_per_epoch, model), loss=loss,
                  metrics=metrics, jit_compile=task.jit_compile())
    return model
