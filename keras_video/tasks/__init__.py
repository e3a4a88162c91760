"""The kinds of work keras_video trains, evaluates and exports: one Task each.

    classification   a class per clip (keras_video.tasks.clip.ClipClassification)
    regression       a number per clip (ClipRegression)
    segmentation     a class map per frame of a video, Deep Feature Flow and its
                     per-frame baseline (keras_video.tasks.segmentation)
    detection        boxes of objects in every frame of a video, R-FCN and Deep Feature
                     Flow on it (keras_video.tasks.detection)

`make_task(config, ...)` picks the task a run needs: the one serving config.model.name, else
the clip task its data's labels call for. `register_task` adds one (a new kind of work
is a new Task, keras_video.tasks.base, run by the same trainer).
"""

from keras_video.tasks.base import Task
from keras_video.tasks.clip import ClipClassification, ClipRegression, clip_task
from keras_video.tasks.detection import VideoDetection
from keras_video.tasks.segmentation import VideoSegmentation

_TASKS = {}


def register_task(task_class):
    """Adds a Task class under its `name`; returns it (usable as a decorator)."""
    if task_class.name in _TASKS:
        raise ValueError(f"task {task_class.name!r} is already registered")
    _TASKS[task_class.name] = task_class
    return task_class


for _task in (ClipClassification, ClipRegression, VideoSegmentation, VideoDetection):
    register_task(_task)


def task_names():
    return sorted(_TASKS)


def get_task(name):
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(task_names())}")
    return _TASKS[name]


def task_of_model(model):
    """The Task class that serves model family `model` whatever the data, or None."""
    return next((t for t in _TASKS.values() if model in t.models), None)


def make_task(config, strategy, data_dir, output_dir):
    """The task of a run, its data read (or generated into data_dir)."""
    task_class = task_of_model(config.model.name)
    if task_class is not None:
        return task_class(config, strategy, data_dir, output_dir)
    return clip_task(config, strategy, data_dir, output_dir)


__all__ = ["ClipClassification", "ClipRegression", "Task", "VideoDetection",
           "VideoSegmentation",
           "get_task", "make_task", "register_task", "task_names", "task_of_model"]
