"""Choosing a tf.distribute strategy by name, and what each worker of a multi-worker
job reads and writes.

    auto          MultiWorkerMirroredStrategy where TF_CONFIG names a cluster of several
                  tasks; else MirroredStrategy over all visible GPUs, or the default
                  strategy on a CPU
    default       no distribution
    mirrored      all GPUs, or, with none, all logical CPU devices (as tests configure)
    multi_worker  tf.distribute.MultiWorkerMirroredStrategy, configured by the standard
                  TF_CONFIG environment variable (one local worker without it)

In a multi-worker job every worker runs the same command. `--batch_size` is the global
batch, split evenly over all replicas. A training set that is a list of files is
sharded by file before the decode (keras_video.data.sharding): each worker decodes only its
share. Otherwise (a TFDS source, or fewer files than workers) each worker reads the
whole stream and tf.distribute keeps its part of every global batch (sharding by data).
Only the chief writes into `--model_dir`; the others write the same files into
throw-away directories (`output_dir`). All of them restore from `MODEL_DIR/backup`, so
`--model_dir` must lie on a file system every worker sees.
"""

import json
import os
import socket
import tempfile

import keras
import tensorflow as tf

from keras_video import run_dir
from keras_video.data.sharding import num_workers

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """tf.distribute.MultiWorkerMirroredStrategy, with `reduce` taking what Keras 3 passes
    it: Keras 3.15's `fit` fails on the plain strategy (keras-team/keras#20585,
    tensorflow/tensorflow#72388) because it reduces a nest of per-replica values (the
    first batch, for the model's symbolic build), which only MirroredStrategy accepts,
    and reduces per-replica scalars (the step's logs) over axis 0, which they lack.
    Both are reduced here as MirroredStrategy does: each value of the nest alone, a
    scalar across replicas only. The collectives carry no uint8 (the pipeline's clips,
    in that first batch): such values are reduced as float32 and cast back."""

    def reduce(self, reduce_op, value, axis=None):
        def reduce_one(v):
            local = self.experimental_local_results(v)[0]
            dtype = local.dtype
            if not (dtype.is_floating or dtype in (tf.int32, tf.int64)):
                v = self.run(lambda x: tf.cast(x, tf.float32), args=(v,))
            scalar = local.shape.rank == 0
            out = super(MultiWorkerMirroredStrategy, self).reduce(
                reduce_op, v, None if scalar else axis)
            return tf.cast(out, dtype)

        return tf.nest.map_structure(reduce_one, value)


def _tf_config_tasks():
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    return sum(len(cluster.get(job, [])) for job in ("chief", "worker"))


def get_strategy(name="auto"):
    """The strategy called `name` (one of STRATEGIES)."""
    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, not {name!r}")
    if name == "multi_worker" or (name == "auto" and _tf_config_tasks() > 1):
        return MultiWorkerMirroredStrategy()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if name == "auto":
        return tf.distribute.MirroredStrategy(gpus) if gpus else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    devices = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


def local_tf_configs(count):
    """TF_CONFIG values (JSON) of a job of `count` workers on free ports of 127.0.0.1:
    a multi-worker job on one machine, as the tests and experiments run one."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    workers = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for s in sockets:
        s.close()
    return [json.dumps({"cluster": {"worker": workers},
                        "task": {"type": "worker", "index": i}}) for i in range(count)]


def is_chief(strategy):
    """True in the one process that writes the outputs (any process but a non-chief
    worker of a multi-worker job)."""
    return strategy.extended.should_checkpoint


def output_dir(model_dir, strategy):
    """Where this process writes: `model_dir` for the chief, a fresh temporary directory
    for the other workers. They write the same files as the chief there, as in
    TensorFlow's multi-worker tutorial, so that any collective op a save involves is
    joined by every worker; the caller removes the directory at the end."""
    if is_chief(strategy):
        return model_dir
    return tempfile.mkdtemp(prefix="keras_video_worker_")


def barrier(strategy):
    """Every worker of a multi-worker job waits here for the others (one small
    all-gather); a worker that ended first would look crashed to the coordination
    service of those still working."""
    if num_workers(strategy) > 1:
        gather(strategy, 1)


def gather(strategy, value):
    """[the int `value` of every replica], on every worker."""
    # In a tf.function: strategy.run outside one warns of a significant overhead.
    return tf.function(lambda: strategy.gather(
        strategy.run(lambda: tf.constant([value])), axis=0))().numpy().tolist()


def _backup_files(directory):
    weights = os.path.join(directory, "latest.weights.h5")
    metadata = os.path.join(directory, "training_metadata.json")
    return weights, metadata


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """keras.callbacks.BackupAndRestore for every strategy. Every worker restores from
    `backup_dir`; the chief backs up into it and the other workers into their
    throw-away `write_dir`, since two workers writing one file corrupt it. In a
    multi-worker job the workers then check that they resumed from the same epoch: one
    that cannot see `backup_dir` (no shared file system) would start afresh and train
    with different weights."""

    def __init__(self, backup_dir, write_dir=None, strategy=None):
        super().__init__(backup_dir)
        self.restore_dir = backup_dir
        self.write_dir = write_dir or backup_dir
        self.strategy = strategy

    def _point_at(self, directory):
        # The parent keeps its paths in these attributes (Keras 3.15).
        self.backup_dir = directory
        self._weights_path, self._training_metadata_path = _backup_files(directory)
        self._prev_weights_path = f"{self._weights_path}.bkp"
        self._prev_training_metadata_path = f"{self._training_metadata_path}.bkp"

    def _save_model(self):
        """The weights, then the epoch they belong to, each written to a temporary file
        and renamed into place (keras_video.run_dir): Keras writes both in place, and a
        run killed during that write left a backup that does not load. A kill between
        the two renames resumes from the previous epoch with these weights."""
        os.makedirs(self.backup_dir, exist_ok=True)
        with run_dir.atomic_path(self._weights_path) as temporary:
            self.model.save_weights(temporary, overwrite=True)
        run_dir.write_json(self._training_metadata_path,
                           {"epoch": self._current_epoch, "batch": self._last_batch_seen})

    def on_train_begin(self, logs=None):
        self._point_at(self.restore_dir)
        super().on_train_begin(logs)
        self._point_at(self.write_dir)
        if self.strategy is not None and num_workers(self.strategy) > 1:
            self._check_workers_agree()

    def _check_workers_agree(self):
        epochs = sorted(set(gather(self.strategy, resumed_epoch(self.restore_dir))))
        if len(epochs) > 1:
            raise ValueError(  # keras_video.commands.cli prints it as one line
                f"{self.restore_dir}: the workers resumed from different epochs "
                f"{epochs}; --model_dir must be a directory every worker shares")


def resumed_epoch(backup_dir):
    """The number of finished epochs a backup in `backup_dir` holds (0: none)."""
    path = _backup_files(backup_dir)[1]
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f).get("epoch", 0)
    return 0
