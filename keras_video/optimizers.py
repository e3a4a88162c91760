"""Optimizers and learning-rate schedules of the training recipes.

    adam + cosine   our default: warm-up, then cosine decay to 1% (CPU-sized runs)
    sgd + plateau   the ResNet3D recipe (Hara et al.): SGD momentum 0.9, lr / 10 when the
                    validation loss stops improving (keras ReduceLROnPlateau)
    sgd + step      the C3D recipe: lr / 10 every `lr_step_epochs` epochs

A layer's learning rate can be a multiple of the base rate (the C3D seed trains fc8 at
10x): Keras optimizers have one rate for all variables, so `update_step` is given the
rate times the variable's multiplier.
"""

import keras

SCHEDULES = ("cosine", "plateau", "step", "constant")


def _with_lr_multipliers(base):
    """A subclass of optimizer class `base` taking {variable path: multiplier}."""

    class Multiplied(base):
        def __init__(self, lr_multipliers=None, **kwargs):
            super().__init__(**kwargs)
            self.lr_multipliers = dict(lr_multipliers or {})

        def build(self, variables):
            super().build(variables)
            # update_step receives the backend variable, so match by the optimizer's key.
            self._multiplier_by_key = {self._var_key(v): self.lr_multipliers[v.path]
                                       for v in variables if v.path in self.lr_multipliers}

        def update_step(self, gradient, variable, learning_rate):
            multiplier = self._multiplier_by_key.get(self._var_key(variable))
            if multiplier is not None:
                learning_rate = learning_rate * multiplier
            return super().update_step(gradient, variable, learning_rate)

        def get_config(self):
            return {**super().get_config(), "lr_multipliers": self.lr_multipliers}

    Multiplied.__name__ = f"{base.__name__}WithLrMultipliers"
    return keras.saving.register_keras_serializable("keras_video")(Multiplied)


SGDWithLrMultipliers = _with_lr_multipliers(keras.optimizers.SGD)
AdamWithLrMultipliers = _with_lr_multipliers(keras.optimizers.Adam)


def learning_rate(settings, steps_per_epoch):
    """A schedule, or a float where a callback changes the rate (plateau)."""
    total = max(1, settings.epochs * steps_per_epoch)
    if settings.lr_schedule == "cosine":
        warmup = min(total // 2, int(settings.warmup_epochs * steps_per_epoch))
        return keras.optimizers.schedules.CosineDecay(
            settings.lr * 0.1, max(1, total - warmup), alpha=0.01, warmup_target=settings.lr,
            warmup_steps=warmup)
    if settings.lr_schedule == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            settings.lr, max(1, settings.lr_step_epochs * steps_per_epoch), 0.1,
            staircase=True)
    if settings.lr_schedule in ("plateau", "constant"):
        return settings.lr
    raise ValueError(f"lr_schedule must be one of {SCHEDULES}, not {settings.lr_schedule!r}")


def make_optimizer(settings, steps_per_epoch, lr_multipliers=None):
    """The optimizer of the optimisation settings (keras_video.training.configs.
    OptimizationConfig); lr_multipliers: {variable path: factor}."""
    rate = learning_rate(settings, steps_per_epoch)
    if settings.optimizer == "sgd":
        # Keras applies weight decay decoupled from the gradient (w -= lr * wd * w); the
        # PyTorch recipes add wd * w to the gradient before momentum. For momentum 0.9
        # the two differ by the momentum's amplification of the decay term.
        return SGDWithLrMultipliers(lr_multipliers, learning_rate=rate,
                                    momentum=settings.momentum, nesterov=False,
                                    weight_decay=settings.weight_decay or None)
    if settings.optimizer == "adam":
        return AdamWithLrMultipliers(lr_multipliers, learning_rate=rate,
                                     weight_decay=settings.weight_decay or None)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', not {settings.optimizer!r}")


def schedule_callbacks(settings):
    """The callbacks a schedule needs (plateau: lr / 10 when val_loss stalls)."""
    if settings.lr_schedule == "plateau":
        return [keras.callbacks.ReduceLROnPlateau("val_loss", factor=0.1,
                                                  patience=settings.plateau_patience,
                                                  min_lr=settings.lr * 1e-4, verbose=1)]
    return []
