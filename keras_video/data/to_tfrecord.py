"""Convert any --data source into TFRecord shards of JPEG frames:

    python -m keras_video.data.to_tfrecord --data=SPEC --out=DIR [--shards=8]
        [--resize=HxW] [--quality=95] [--on_bad_sample=error|skip] [--seed=0]
        [--num=N]  (synthetic:NAME only)

SPEC is anything keras_video.data.sources.from_spec reads (frame folders, class
folders, a labels CSV, ucf101:PATH:split1:train, hmdb51:..., tfds:NAME[:SPLIT]) or
synthetic:oscillation / synthetic:motion (--num clips generated with --seed first).
The layout is keras_video.data.tfrecord's (the Model Garden's SequenceExample); read it
back with --data=tfrecord:DIR.

Frames are stored at their own size by default, so a reader can still choose any clip
size, and a benchmark of the reader pays for the full JPEG decode. JPEG frames are
stored as they are, without re-encoding: the packets of an MJPEG video, and .jpg files
without an EXIF block (EXIF may rotate the image, which OpenCV applies and
tf.io.decode_jpeg does not). Every other frame (H.264, VP9, PNG, a TFDS array, or all
frames with --resize, resized with INTER_AREA) is encoded as JPEG at --quality.

Clips are dealt to the shards in a seeded random order, so each shard holds a mix of
classes and a small shuffle buffer shuffles well. Bad inputs follow --on_bad_sample:
'error' stops with the file named, 'skip' leaves the clip out and lists it in the
manifest.
"""

import json
import os
import sys
import tempfile

from keras_video import runtime

if __name__ == "__main__":  # a command: choose TensorFlow's CPU kernels, then import it
    runtime.start()

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_video.data import decode, sources, tfrecord
from keras_video.data.decode import BadSampleError
from keras_video.data.samples import TfdsSource


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _has_exif(data):
    return any(marker == 0xE1 and bytes(data[offset:offset + 6]) == b"Exif\0\0"
               for marker, offset, _ in decode.jpeg_segments(data))


def _encode(frames_bgr, quality):
    out = []
    for frame in frames_bgr:
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError("cv2.imencode failed")
        out.append(data.tobytes())
    return out


def _folder_frames(folder, resize, quality):
    """JPEG bytes of every image of a frame folder."""
    out = []
    for path in decode.list_frames(folder):
        with open(path, "rb") as f:
            data = f.read()
        if resize is None and decode.jpeg_size(data) and not _has_exif(data):
            if cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is None:
                raise BadSampleError(path, "unreadable image (corrupt or not an image)")
            out.append(data)
            continue
        image = decode.resize_frame(decode.read_image(path), resize)
        out += _encode([image], quality)
    return out


def _video_frames(path, resize, quality):
    """(JPEG bytes of every frame, frames per second) of a video file."""
    cap = decode._open_video(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    cap.release()
    packets = decode.jpeg_packets(path) if resize is None else None
    if packets is not None:
        return packets, fps
    frames = decode.read_all_frames(path, resize)
    return _encode(np.ascontiguousarray(frames[..., ::-1]), quality), fps


def sequence_example(encoded, label, task, class_names, media_id, fps=0.0):
    """The tf.train.SequenceExample of one clip (keras_video.data.tfrecord's layout)."""
    sizes = {decode.jpeg_size(data) for data in encoded}
    height, width = decode.jpeg_size(encoded[0])
    context = {
        "clip/media_id": _bytes([media_id.encode()]),
        "image/height": _ints([height]),
        "image/width": _ints([width]),
        "image/format": _bytes([b"JPEG"]),
        "image/frame_rate": _floats([fps]),
    }
    if len(sizes) > 1:
        context[tfrecord.MIXED_SIZES_KEY] = _ints([1])
    if task == "classification":
        context[tfrecord.LABEL_KEY] = _ints([int(label)])
        context["clip/label/string"] = _bytes([class_names[int(label)].encode()])
    else:
        context["clip/label/value"] = _floats([float(label)])
    frames = tf.train.FeatureList(feature=[_bytes([data]) for data in encoded])
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list={tfrecord.IMAGE_KEY: frames}))


def _clips(source, resize, quality):
    """(media id, label, group, JPEG frames, fps) per clip, or a BadSampleError."""
    if isinstance(source, TfdsSource):
        ds, _ = source.load()
        for k, (video, label) in enumerate(ds.as_numpy_iterator()):
            frames = [decode.resize_frame(np.ascontiguousarray(f[..., ::-1]), resize)
                      for f in video]
            yield (f"tfds:{source.name}:{source.split}:{k}", label, None,
                   _encode(frames, quality), 0.0)
        return
    for path, label, group in zip(source.paths, source.labels, source.groups):
        try:
            if os.path.isdir(path):
                frames, fps = _folder_frames(path, resize, quality), 0.0
            else:
                frames, fps = _video_frames(path, resize, quality)
        except BadSampleError as e:
            yield e
            continue
        yield path, label, group, frames, fps


def _source(spec, num, seed, on_bad_sample, workdir):
    """(source, task, class names) of a --data value; synthetic:NAME is generated."""
    if spec.startswith("synthetic:"):
        from keras_video.data import generate

        name = spec.split(":", 1)[1]
        if name not in generate.GENERATORS:
            raise ValueError(f"unknown synthetic data set {name!r}")
        if not num:
            raise ValueError(f"--data={spec} needs --num (clips to generate)")
        spec = generate.GENERATORS[name].write(os.path.join(workdir, name), num, seed,
                                               fmt="video", progress=False)
    source = sources.from_spec(spec, on_bad_sample)
    if isinstance(source, TfdsSource):
        ds, class_names = source.load()
        num = int(ds.cardinality())
        if num < 0:  # unknown: count the examples
            num = int(ds.reduce(0, lambda count, _: count + 1))
        return source, "classification", class_names, num
    return source, source.task, source.class_names, len(source)


def convert(spec, out, shards=8, resize=None, quality=95, on_bad_sample="error", seed=0,
            num=None, progress=True):
    """Writes `spec`'s clips to `out` (see the module docstring); returns the manifest."""
    if os.path.isdir(out) and os.listdir(out):
        raise ValueError(f"{out}: output folder is not empty")
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="to_tfrecord_") as workdir:
        source, task, class_names, count = _source(spec, num, seed, on_bad_sample, workdir)
        shards = max(1, min(shards, count))
        names = [tfrecord.shard_name(k, shards) for k in range(shards)]
        # Clip k of the source goes to shard order[k] % shards: shards mix the classes.
        order = np.random.default_rng(seed).permutation(count)
        writers = [tf.io.TFRecordWriter(os.path.join(out, n)) for n in names]
        records = [0] * shards
        clips, skipped = [], []
        bar = keras.utils.Progbar(count, unit_name="clip") if progress else None
        try:
            for k, item in enumerate(_clips(source, resize, quality)):
                if bar is not None:
                    bar.update(k + 1)
                if isinstance(item, BadSampleError):
                    if on_bad_sample == "error":
                        raise item
                    print(f"skipping bad sample {item}", file=sys.stderr)
                    skipped.append(str(item))
                    continue
                media_id, label, group, frames, fps = item
                shard = int(order[k % count]) % shards
                example = sequence_example(frames, label, task, class_names, media_id, fps)
                writers[shard].write(example.SerializeToString())
                clips.append({"path": media_id, "label": label.item(), "group": group,
                              "shard": shard, "record": records[shard],
                              "frames": len(frames)})
                records[shard] += 1
        finally:
            for writer in writers:
                writer.close()
    if not clips:
        raise BadSampleError(spec, "no usable clips to convert")
    manifest = {"format": tfrecord.FORMAT, "source": spec, "task": task,
                "class_names": class_names, "resize": list(resize) if resize else None,
                "quality": quality,
                "shards": [{"file": n, "records": r} for n, r in zip(names, records)],
                "clips": clips, "skipped": skipped}
    # Written last: a folder without it is an unfinished conversion.
    with open(os.path.join(out, tfrecord.MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


if __name__ == "__main__":
    from keras_video.commands import to_tfrecord

    to_tfrecord.run()
