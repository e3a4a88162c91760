"""One process of the multi-worker tests (tests/test_multi_worker.py): trains a small
C3D on video files through the project's pipeline, sharding and BackupAndRestore, and
saves its weights at the start (OUT_begin.npz, after any restore) and after each
epoch N (OUT_epochN.npz, with the epoch's loss). The chief backs up to
MODEL_DIR/backup, as `keras_video.train` does.

    python tests/multi_worker_job.py --strategy=multi_worker --data=DIR --out=OUT
        --model_dir=DIR [--epochs=2] [--stop_after_epoch=K]

The run is exact in exact arithmetic whatever the number of workers: no shuffle, the
clips read in file order, no dropout and no BatchNorm (C3D has none), the global batch
a multiple of the workers, SGD with momentum. TF_CONFIG (set by the test) places the
process in its cluster. --stop_after_epoch ends the process right after that epoch's
backup, as a restart of the job would.
"""

import argparse
import os

import keras
import numpy as np

from keras_video.training import distribute
from keras_video.data import sources
from keras_video.data.pipeline import ClipSpec, make_dataset
from keras_video.models import build_model
from keras_video.data import sharding

GLOBAL_BATCH = 8
CLIP = ClipSpec(16, (32, 32), "first")


class SaveWeights(keras.callbacks.Callback):
    def __init__(self, prefix):
        super().__init__()
        self.prefix = prefix

    def on_train_begin(self, logs=None):
        np.savez(f"{self.prefix}_begin.npz", *self.model.get_weights())

    def on_epoch_end(self, epoch, logs=None):
        np.savez(f"{self.prefix}_epoch{epoch + 1}.npz", *self.model.get_weights(),
                 loss=logs["loss"])


class StopAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            os._exit(3)


def main():
    parser = argparse.ArgumentParser()
    for name in ("strategy", "data", "out", "model_dir"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--stop_after_epoch", type=int, default=0)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    strategy = distribute.get_strategy(args.strategy)
    samples = sources.from_spec(args.data)
    inputs = sharding.distribute_dataset(
        strategy, samples, lambda source, batch_size: make_dataset(
            source, CLIP, batch_size, training=False), GLOBAL_BATCH)
    with strategy.scope():
        model = build_model("c3d", num_classes=len(samples.class_names),
                            input_shape=CLIP.shape, width=1 / 16, dropout=0.0)
        model.compile(keras.optimizers.SGD(1e-3, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy())
    out_dir = distribute.output_dir(args.model_dir, strategy)
    callbacks = [distribute.BackupAndRestore(os.path.join(args.model_dir, "backup"),
                                             os.path.join(out_dir, "backup"), strategy),
                 SaveWeights(args.out)]
    if args.stop_after_epoch:
        callbacks.append(StopAfterEpoch(args.stop_after_epoch))
    print("replicas", strategy.num_replicas_in_sync, "workers",
          distribute.num_workers(strategy), "chief", distribute.is_chief(strategy),
          flush=True)
    history = model.fit(inputs, epochs=args.epochs, callbacks=callbacks, verbose=2)
    print("epochs run", len(history.history["loss"]))


if __name__ == "__main__":
    main()
