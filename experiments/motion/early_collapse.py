"""How often does a motion recipe collapse to chance in its first epochs?

    python experiments/motion/early_collapse.py [--experiment motion_c3d]
        [--seeds 1 2 3 4] [--epochs 3] [--data_seed 10] [--nomixed_precision]

A recipe trained from scratch can fall, within its first few hundred steps, into a
model whose every output is the class prior: the validation loss sits at ln(classes)
and never leaves it (experiments/LOG.md, 2026-12-03). This trains the recipe's
model, optimizer, learning-rate schedule (over the recipe's full length) and data
(`keras_video.train`'s, generated once per --data_seed into runs/motion_data) for its
first --epochs epochs only, once per initial-weight seed, and reports per run the
validation loss by epoch, whether it collapsed, and, at the end, the layers with dead
units: the share of the channels of each ReLU output that are zero everywhere on every
validation clip (a layer at 1.00 passes nothing on, and every later layer sees a
constant), and the weights that are NaN or infinite (a NaN weight makes a ReLU pass
0, so a NaN trunk also leaves the head a constant).
"""

import argparse
import math
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_video import optimizers  # noqa: E402
from keras_video.training import configs
from keras_video.training import trainer  # noqa: E402
from keras_video.data import datasets  # noqa: E402
from keras_video.data.pipeline import make_dataset  # noqa: E402
from keras_video.models import build_model  # noqa: E402

COLLAPSE_TOLERANCE = 1e-3  # val loss this close to ln(classes): the class prior


def relu_outputs(model):
    """The layers whose output is a ReLU's: ReLU layers and Dense layers with relu."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU) or (
        isinstance(layer, keras.layers.Dense)
        and layer.activation is keras.activations.relu)]


def dead_units(model, clips):
    """{layer with a ReLU output: share of its units (channels) that are 0 on every
    position of every clip}; a layer at 1.0 passes nothing on."""
    layers = relu_outputs(model)
    if not layers:
        return {}
    outputs = keras.Model(model.inputs, [layer.output for layer in layers])(
        clips, training=False)
    shares = {}
    for layer, out in zip(layers, outputs):
        out = np.asarray(tf.cast(out, tf.float32))
        per_unit = out.reshape(-1, out.shape[-1]).max(0)
        shares[layer.name] = float(np.mean(per_unit <= 0))
    return shares


def probe(config, seed, epochs, splits):
    keras.utils.set_random_seed(seed)
    model = build_model(config.model.name, **config.model_config(splits.num_classes))
    model.compile(optimizers.make_optimizer(config.optimization,
                                            config.optimization.steps_per_epoch),
                  keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="top1")])
    clip = config.data.clip_spec()
    train_ds = make_dataset(splits.train, clip, config.optimization.batch_size,
                            training=True,
                            seed=seed).repeat()
    val_ds = make_dataset(splits.val, clip.for_eval(), config.optimization.batch_size,
                          training=False)
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs,
                        steps_per_epoch=config.optimization.steps_per_epoch, verbose=0).history
    val_clips = np.concatenate([x.numpy() for x, _ in val_ds])
    non_finite = [v.path for v in model.weights if not np.all(np.isfinite(
        np.asarray(tf.cast(v, tf.float32))))]
    return history, dead_units(model, val_clips), non_finite


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="motion_c3d")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data_seed", type=int, default=10)
    parser.add_argument("--mixed_precision", action=argparse.BooleanOptionalAction,
                        default=None, help="default: the recipe's")
    args = parser.parse_args()
    overrides = {"seed": args.data_seed}
    if args.mixed_precision is not None:
        overrides["mixed_precision"] = args.mixed_precision
    config = configs.make_config(args.experiment, overrides)
    if config.runtime.mixed_precision:
        trainer.set_mixed_precision()
    splits = datasets.load_splits(config.data, config.runtime.seed,
                                  os.path.join(REPO, "runs", "motion_data"))
    chance_loss = math.log(splits.num_classes)
    print(f"# {args.experiment}, mixed precision {config.runtime.mixed_precision}, first "
          f"{args.epochs} of {config.optimization.epochs} epochs, data seed {args.data_seed}; "
          f"ln(classes) = {chance_loss:.4f}")
    print("| init seed | val loss by epoch | val top-1 by epoch | collapsed | "
          "dead units (layers with any) | non-finite weights |")
    print("|---:|---|---|---|---|---|")
    collapsed = 0
    for seed in args.seeds:
        history, dead, non_finite = probe(config, seed, args.epochs, splits)
        losses, top1 = history["val_loss"], history["val_top1"]
        flat = abs(losses[-1] - chance_loss) < COLLAPSE_TOLERANCE
        collapsed += flat
        print(f"| {seed} | {' '.join(f'{v:.4f}' for v in losses)} | "
              f"{' '.join(f'{v:.3f}' for v in top1)} | {'yes' if flat else 'no'} | "
              f"{', '.join(f'{k} {v:.2f}' for k, v in dead.items() if v) or 'none'} | "
              f"{', '.join(non_finite) or 'none'} |", flush=True)
        keras.backend.clear_session()
    print(f"\ncollapsed: {collapsed} of {len(args.seeds)}")


if __name__ == "__main__":
    main()
