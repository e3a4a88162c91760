"""The run directory: what a training run leaves, and the one module that names it.

    runs/<experiment or model>/   (--model_dir)
      config.json     the settings, model config, clip recipe, class names, held-out data
      best.keras      the best model so far (by validation loss); best.keras.json its score
      backup/         the state a killed run resumes from (distribute.BackupAndRestore)
      logs/           TensorBoard: curves, and pictures under logs/images
      export/         the SavedModel for serving (keras_video.serving.export) and its meta.json
      metrics.json    held-out metrics; its presence marks a finished run
      data/           generated data sets (synthetic:...), unless --data_dir says otherwise

Every command reads and writes these through `RunDir`. Files are written atomically: to
a temporary name in the same folder, then renamed over the old one (`os.replace`), so
a run killed during a save leaves the previous file, never a half-written one. The
SavedModel, a folder, is written beside `export/` and swapped in by two renames.
"""

import contextlib
import json
import os
import shutil
import tempfile

CONFIG = "config.json"
BEST_MODEL = "best.keras"
METRICS = "metrics.json"
EXPORT = "export"
BACKUP = "backup"
LOGS = "logs"
DATA = "data"


def default_path(experiment, model):
    """Where a run goes without --model_dir."""
    return os.path.join("runs", experiment or model)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path` (same folder, same endings) to write
    into; renames it to `path` when the block ends without an error, else removes it."""
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # The whole ending: Keras wants ".weights.h5" of a weights file, ".keras" of a model.
    stem, dot, ending = name.partition(".")
    ending = dot + ending
    handle, temporary = tempfile.mkstemp(prefix=f".{stem}.", suffix=f".tmp{ending}",
                                         dir=directory)
    os.close(handle)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_json(path, value):
    """Writes `value` as indented JSON to `path`, atomically."""
    with atomic_path(path) as temporary:
        with open(temporary, "w") as f:
            json.dump(value, f, indent=2)
            f.flush()
            os.fsync(f.fileno())


def read_json(path, what="file"):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; is {os.path.dirname(path) or '.'} a "
                                f"keras_video run? ({what})")
    with open(path) as f:
        return json.load(f)


def save_model(model, path):
    """model.save(path) (a .keras file), atomically."""
    with atomic_path(path) as temporary:
        model.save(temporary)


def replace_folder(write, path):
    """Calls write(folder) on a fresh folder beside `path`, then puts it in the place of
    `path` (the old one, if any, is moved aside and removed)."""
    parent, name = os.path.split(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fresh = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
    try:
        write(fresh)
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=parent)
            os.replace(path, os.path.join(old, name))
        os.replace(fresh, path)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if os.path.exists(fresh):
            shutil.rmtree(fresh, ignore_errors=True)
    return path


class RunDir:
    """The files of one run directory (see the module docstring)."""

    def __init__(self, path):
        self.path = path

    def __repr__(self):
        return f"RunDir({self.path!r})"

    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def config_path(self):
        return self.file(CONFIG)

    @property
    def best_model_path(self):
        return self.file(BEST_MODEL)

    @property
    def metrics_path(self):
        return self.file(METRICS)

    @property
    def export_dir(self):
        return self.file(EXPORT)

    @property
    def backup_dir(self):
        return self.file(BACKUP)

    @property
    def logs_dir(self):
        return self.file(LOGS)

    @property
    def data_dir(self):
        return self.file(DATA)

    def create(self):
        """Makes the folder; removes the temporaries a killed save left in it."""
        os.makedirs(self.path, exist_ok=True)
        for folder in (self.path, self.backup_dir):
            if not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                if name.startswith(".") and (".tmp" in name or name.endswith(".old")):
                    path = os.path.join(folder, name)
                    if os.path.isdir(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.remove(path)
        return self

    def write_config(self, config):
        write_json(self.config_path, config)

    def read_config(self):
        return read_json(self.config_path, "its config.json is written when training starts")

    def write_metrics(self, metrics):
        write_json(self.metrics_path, metrics)

    def finished_metrics(self):
        """The metrics.json of a finished run, or None."""
        if not os.path.isfile(self.metrics_path):
            return None
        return read_json(self.metrics_path)

    def load_best_model(self, compile=False):
        from keras_video import saving

        if not os.path.isfile(self.best_model_path):
            raise FileNotFoundError(f"{self.best_model_path}: missing; has {self.path} "
                                    "finished an epoch?")
        return saving.load_model(self.best_model_path, compile=compile)


def export_dir_of(path):
    """The SavedModel folder of `path`: a run directory (its export/) or the export
    folder itself."""
    export = os.path.join(path, EXPORT)
    return export if os.path.isdir(export) else path
