"""A training input under a tf.distribute strategy: a list of files is sharded by file
before the decode, so that each worker of a multi-worker job decodes only its share
(keras_video.training.distribute chooses the strategy)."""

import numpy as np
import tensorflow as tf

from keras_video.data.samples import Samples


def num_workers(strategy):
    """Workers of a multi-worker job (1 for every other strategy)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 1
    return strategy.num_replicas_in_sync // len(strategy.extended.worker_devices)


def shard(samples, index, count):
    """Worker `index` of `count`'s share of a list of clips: every count-th clip from
    clip `index`, the list first padded by repeating its first clips to a multiple of
    `count` (as torch's DistributedSampler does), so every worker runs the same number
    of equal batches: a step's global batch is then exactly the union of the workers'
    batches, and no worker waits for a missing one."""
    padded = -(-len(samples) // count) * count
    return samples.subset((np.arange(padded) % len(samples))[index::count])


def distribute_dataset(strategy, source, make_dataset, global_batch):
    """The training or validation input for `model.fit` under `strategy`.

    make_dataset(source, batch_size) -> a batched tf.data.Dataset of (clips, labels).
    A list of at least as many files as workers in a multi-worker job is sharded by
    file before the decode, and batched per replica: global_batch / replicas. Anything
    else is batched by global_batch, and Keras lets tf.distribute split each global
    batch over the replicas (every worker reading the whole stream: sharding by data).
    """
    workers = num_workers(strategy)
    if workers == 1 or not isinstance(source, Samples) or len(source) < workers:
        return make_dataset(source, global_batch)
    replicas = strategy.num_replicas_in_sync
    if global_batch % replicas:
        raise ValueError(f"--batch_size={global_batch} is the global batch; it must be a "
                         f"multiple of the {replicas} replicas")

    def worker_dataset(context):
        return make_dataset(
            shard(source, context.input_pipeline_id, context.num_input_pipelines),
            context.get_per_replica_batch_size(global_batch))

    return strategy.distribute_datasets_from_function(worker_dataset)
