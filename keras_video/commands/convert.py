"""python -m keras_video.convert: a published PyTorch checkpoint -> a Keras file.

    python -m keras_video.convert --arch=r3d50 --checkpoint=r3d50_K_200ep.pth \\
        --output=r3d50_K.weights.h5 [--num_classes=10] [--shortcut_type=B] ...

The architectures and the files they read: keras_video.models.pretrained.
"""

from absl import flags

from keras_video.commands import cli
from keras_video.conversion.torch_file import torch_state_dict
from keras_video.conversion.torch_weights import head_layer
from keras_video.models import pretrained
from keras_video.models.pretrained import ARCHS


def define_flags():
    flags.DEFINE_enum("arch", None, ARCHS, "architecture of the checkpoint")
    flags.DEFINE_string("checkpoint", None, "the PyTorch .pth file")
    flags.DEFINE_string("output", None, "where to write: FILE.weights.h5 or FILE.keras")
    flags.DEFINE_integer("num_classes", None, "class count of the Keras model (default: "
                         "the checkpoint's); another one loads all but the head")
    flags.DEFINE_enum("shortcut_type", None, ["A", "B"], "ResNet3D shortcut (default B)")
    flags.DEFINE_integer("conv1_t_size", None, "ResNet3D conv1 temporal kernel (default 7)")
    flags.DEFINE_integer("conv1_t_stride", None, "ResNet3D conv1 temporal stride (default 1)")
    flags.DEFINE_boolean("no_max_pool", None, "ResNet3D without the max-pool after conv1")
    flags.DEFINE_float("widen_factor", None, "ResNet3D channel factor (default 1.0)")
    flags.mark_flags_as_required(["arch", "checkpoint", "output"])


def main(argv):
    del argv
    f = flags.FLAGS
    if not f.output.endswith((".weights.h5", ".keras")):
        raise ValueError(f"{f.output}: --output must end with .weights.h5 or .keras")
    config = {name: f[name].value for name in ("num_classes", "shortcut_type",
                                               "conv1_t_size", "conv1_t_stride",
                                               "no_max_pool", "widen_factor")
              if f[name].value is not None}
    state_dict, info = torch_state_dict(f.checkpoint)
    if f.arch == "c3d":
        state_dict = pretrained.rename_c3d_seed_keys(state_dict)
    head = state_dict.get(pretrained.head_key(f.arch))
    file_classes = None if head is None else int(head.shape[0])
    skip_head = f.num_classes is not None and f.num_classes != file_classes
    model = pretrained.convert(f.arch, state_dict, info, skip_head, config)
    if f.output.endswith(".keras"):
        model.save(f.output)
    else:
        model.save_weights(f.output)
    classes = model.output.shape[-1]
    print(f"Converted {f.checkpoint} ({f.arch}, {len(state_dict)} tensors) -> {f.output}")
    if skip_head:
        held = "none" if file_classes is None else f"{file_classes} classes"
        print(f"Loaded every layer but the head {head_layer(model).name!r}: the checkpoint's "
              f"head has {held}, the model {classes}; the head keeps a fresh initialisation")
    else:
        print(f"Loaded every layer, the head {head_layer(model).name!r} ({classes} classes) "
              "included")
    return 0



def run():
    """The command line: flags, then main (a bad input is one line, not a traceback)."""
    define_flags()
    cli.run(main)
