"""Published PyTorch checkpoints -> keras_video models.

    model = from_torch("r3d50", "r3d50_K_200ep.pth")             # 700 Kinetics classes
    model = from_torch("r3d50", path, num_classes=10, skip_head=True)  # all but fc

    python -m keras_video.convert --arch=r3d50 --checkpoint=r3d50_K_200ep.pth \\
        --output=r3d50_K.weights.h5 [--num_classes=10] [--shortcut_type=B] ...

Architectures and the files they read:
  c3d                 the C3D seed's Sports-1M `c3d-pretrained.pth` (keys features.N /
                      classifier.N, renamed as the seed's __load_pretrained_weights
                      does, plus classifier.6 -> fc8, its 487-class head), or a state_dict
                      with the module names (conv1.weight ... fc8.bias)
  r3d10 ... r3d200,   kenshohara/3D-ResNets-PyTorch files: r3d*_200ep.pth, r2p1d*_200ep
  r2plus1d18/34       (shortcut B, the default), the 2017 resnet-*-kinetics.pth (resnet-18
                      and -34: --shortcut_type=A); a dict with `state_dict` (keys maybe
                      prefixed `module.`), `arch`, `epoch`, ...
  resnet18/34/50/101  torchvision's ImageNet files, into keras_video.models.resnet2d's
                      classifier (the frame backbones also read these .pth directly)
Every key must find its layer and every layer its keys, with the right shapes: what
does not is named in one ValueError and nothing is assigned. num_classes defaults to
the checkpoint's head; with another class count, skip_head=True (the CLI does it by
itself and says so) loads everything but the head.

Reading .pth files needs no PyTorch (keras_video.conversion.torch_file); the weights
go into the model through keras_video.conversion.torch_weights.
"""

from keras_video.conversion.torch_file import read_torch_file, torch_state_dict  # noqa: F401
from keras_video.conversion.torch_weights import head_layer, load_state_dict

ARCHS_2D = ("resnet18", "resnet34", "resnet50", "resnet101")
ARCHS_3D = ("c3d", "r3d10", "r3d18", "r3d34", "r3d50", "r3d101", "r3d152", "r3d200",
            "r2plus1d18", "r2plus1d34")
ARCHS = ARCHS_3D + ARCHS_2D

# The C3D seed's __load_pretrained_weights: module in c3d-pretrained.pth -> C3D module.
# It drops classifier.6, the Sports-1M fc8; we keep it as fc8 (skip_head drops it).
C3D_SEED_MODULES = {
    "features.0": "conv1", "features.3": "conv2", "features.6": "conv3a",
    "features.8": "conv3b", "features.11": "conv4a", "features.13": "conv4b",
    "features.16": "conv5a", "features.18": "conv5b", "classifier.0": "fc6",
    "classifier.3": "fc7", "classifier.6": "fc8",
}


def _rename_c3d_seed_keys(state_dict):
    if not any(k.startswith(("features.", "classifier.")) for k in state_dict):
        return state_dict
    renamed = {}
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        renamed[f"{C3D_SEED_MODULES.get(module, module)}.{param}"] = value
    return renamed


def _head_key(arch):
    return "fc8.weight" if arch == "c3d" else "fc.weight"


def _convert(arch, state_dict, info, skip_head, model_config):
    from keras_video.models import build_model, model_arguments

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")
    source = info.get("source", "state_dict")
    if arch == "c3d":
        state_dict = _rename_c3d_seed_keys(state_dict)
    config = dict(model_config)
    if config.get("num_classes") is None:
        head = state_dict.get(_head_key(arch))
        if head is None:
            raise ValueError(f"{source}: has no {_head_key(arch)!r} to take the class "
                             "count from; pass num_classes (and skip_head=True)")
        config["num_classes"] = int(head.shape[0])

    if arch in ARCHS_2D:
        from keras_video.models import resnet2d

        unknown = set(config) - {"num_classes", "input_shape"}
        if unknown:
            raise ValueError(f"{arch} takes num_classes and input_shape, not "
                             f"{', '.join(sorted(unknown))}")
        model = resnet2d.resnet_classifier(int(arch[6:]), config.get("input_shape", (224, 224, 3)),
                                           config["num_classes"])
        return load_state_dict(model, state_dict, skip_head, source)

    unknown = set(config) - model_arguments(arch)
    if unknown:
        raise ValueError(f"{arch} has no option {', '.join(sorted(unknown))}")
    model = build_model(arch, **config)
    try:
        return load_state_dict(model, state_dict, skip_head, source)
    except ValueError as error:
        hints = []
        if "arch" in info:
            hints.append(f"the checkpoint was saved as arch {info['arch']!r}")
        if f"'{_head_key(arch)}'" in str(error) and not skip_head:
            hints.append("another class count? skip_head=True loads all but the head")
        raise ValueError(str(error) + "".join(f"\n({hint})" for hint in hints)) from None


def from_torch(arch, checkpoint, skip_head=False, **model_config):
    """A keras_video model of `arch` with the weights of a PyTorch checkpoint.

    checkpoint: a .pth path, or a loaded checkpoint / state_dict (arrays or tensors).
    model_config: the builder's options (keras_video.models.build_model, e.g.
    shortcut_type="A", input_shape, classifier_activation=None); num_classes defaults to
    the checkpoint's head. For resnet18/34/50/101 the model is
    keras_video.models.resnet2d.resnet_classifier (options num_classes, input_shape).
    """
    state_dict, info = torch_state_dict(checkpoint)
    return _convert(arch, state_dict, info, skip_head, model_config)


# ---------------------------------------------------------------- command line

def define_flags():
    from absl import flags

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
    from absl import flags

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
        state_dict = _rename_c3d_seed_keys(state_dict)
    head = state_dict.get(_head_key(f.arch))
    file_classes = None if head is None else int(head.shape[0])
    skip_head = f.num_classes is not None and f.num_classes != file_classes
    model = _convert(f.arch, state_dict, info, skip_head, config)
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


if __name__ == "__main__":
    from keras_video import cli, runtime

    runtime.start()

    define_flags()
    cli.run(main)
