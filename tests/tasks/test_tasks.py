"""keras_video.tasks: the registry, which task a run gets, and a new kind of work added
as a Task alone, trained by the unchanged trainer (what the detection task will do)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_video import models, run_dir, tasks
from keras_video.training import configs
from keras_video.training import distribute
from keras_video.tasks.base import Task, compile_model
from keras_video.training import trainer


def test_registry():
    assert tasks.task_names() == ["classification", "detection", "regression",
                                  "segmentation"]
    assert tasks.task_of_model("dff") is tasks.VideoSegmentation
    assert tasks.task_of_model("dff_rfcn") is tasks.VideoDetection
    assert tasks.task_of_model("rfcn") is tasks.VideoDetection
    assert tasks.task_of_model("frame_seg") is tasks.VideoSegmentation
    assert tasks.task_of_model("r3d18") is None  # a clip model: chosen by its data
    with pytest.raises(ValueError, match="already registered"):
        tasks.register_task(tasks.ClipRegression)
    with pytest.raises(ValueError, match="unknown task 'tracking'"):
        tasks.get_task("tracking")


def test_the_data_chooses_the_clip_task(oscillation_videos, class_videos, tmp_path):
    strategy = distribute.get_strategy("default")
    for data, expected in ((oscillation_videos, tasks.ClipRegression),
                           (class_videos, tasks.ClipClassification)):
        config = configs.make_config("", dict(data=data, size=32, frames=8))
        task = tasks.make_task(config, strategy, str(tmp_path), str(tmp_path))
        assert type(task) is expected and task.config.task == expected.name


def toy_model(input_shape=(4,), num_classes=3):
    inputs = keras.Input(input_shape)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax",
                                                  name="fc")(inputs), name="toy")


class ToyTask(Task):
    """Classifies random 4-vectors by the sign pattern of two coordinates: a kind of work
    the library does not have, with its own data, metric, picture and export."""

    name = "toy"
    models = ("toy_model",)
    picture_name = "toy.png"

    def __init__(self, config, strategy, data_dir, output_dir):
        super().__init__(config, strategy, data_dir, output_dir)
        rng = np.random.default_rng(config.runtime.seed)
        self.x = rng.normal(size=(64, 4)).astype("float32")
        self.y = (self.x[:, 0] > 0).astype("int32") + (self.x[:, 1] > 0)

    def record(self):
        return {"eval_data": "toy:64"}

    def steps_per_epoch(self):
        return 4

    def build_model(self):
        return models.build_model("toy_model")

    def compile(self, model, steps_per_epoch):
        return compile_model(self, model, steps_per_epoch, "sparse_categorical_crossentropy",
                             ["accuracy"])

    def fit(self, fitted, callbacks, steps_per_epoch):
        data = tf.data.Dataset.from_tensor_slices((self.x, self.y)).batch(16)
        return fitted.fit(data, validation_data=data, epochs=self.config.optimization.epochs,
                          callbacks=callbacks, verbose=0)

    def evaluate(self, best):
        right = np.argmax(best.predict(self.x, verbose=0), axis=-1) == self.y
        return {"accuracy": float(right.mean())}, np.zeros((8, 8, 3), np.uint8)

    def export(self, best, folder):
        best.export(folder, verbose=False)
        return folder


@pytest.fixture
def toy_task():
    models.register_model("toy_model", toy_model)
    tasks.register_task(ToyTask)
    yield ToyTask
    models._REGISTRY.pop("toy_model")
    tasks._TASKS.pop("toy")


def test_a_new_task_trains_with_the_unchanged_trainer(toy_task, tmp_path):
    config = configs.make_config("", dict(model="toy_model", epochs=3, lr=0.05,
                                          model_dir=str(tmp_path / "toy"), quiet=True))
    metrics = trainer.train(config)
    run = run_dir.RunDir(str(tmp_path / "toy"))
    saved = run.finished_metrics()
    assert saved["metrics"] == metrics and saved["eval_data"] == "toy:64"
    # The accuracy it reports is the saved best model's on its data.
    best = run.load_best_model()
    task = ToyTask(config, None, "", "")
    assert task.evaluate(best)[0]["accuracy"] == pytest.approx(metrics["accuracy"])
    assert os.path.isfile(run.file("toy.png"))
    assert os.path.isfile(os.path.join(run.export_dir, "saved_model.pb"))
    with open(run.config_path) as f:
        assert json.load(f)["train"]["model"] == "toy_model"
    # A finished run is not trained again.
    assert trainer.train(config) == metrics
