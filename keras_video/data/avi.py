"""The JPEG packets of a plain MJPEG .avi file, found without FFmpeg.

An AVI is a RIFF file: a header list (`hdrl`: one `strl` list a stream, each with its
`strh` header and `strf` format) and a `movi` list of chunks, one a frame, named by
stream number and type (`00dc`: stream 0, compressed video). In an MJPEG AVI every
video chunk is a whole JPEG image, so a clip needs only the chunks it samples, handed
to cv2.imdecode. Opening the file with cv2.VideoCapture instead costs FFmpeg's format
probe and a demuxer call a frame: 0.85 of the 10.1 CPU ms a 30-frame clip cost in the
input pipeline benchmark (experiments/RESULTS.md, input pipeline).

`mjpeg_packets` accepts only the simple, complete layout (one RIFF, one MJPEG video
stream starting at frame 0, no `rec ` lists, as many video chunks as the stream header
declares, none empty or cut short) and returns None for anything else: another
codec, OpenDML files over 1 GB (`AVIX`), a truncated or damaged file. Those go
through FFmpeg (keras_video.data.decode), which gives every error its message.
"""

import os
import struct

import numpy as np

MJPEG_FOURCCS = (b"MJPG", b"JPEG")
# Larger files are read through FFmpeg: reading all of one to sample 16 frames would
# cost more than FFmpeg's seeking.
MAX_BYTES = 64 << 20


def _chunks(data, start, end):
    """(fourcc, payload offset, payload size) of the RIFF chunks in data[start:end];
    None at the end if a chunk runs past `end` (a truncated file)."""
    offset = start
    while offset + 8 <= end:
        fourcc = data[offset:offset + 4]
        size = struct.unpack_from("<I", data, offset + 4)[0]
        if offset + 8 + size > end:
            yield None
            return
        yield fourcc, offset + 8, size
        offset += 8 + size + (size & 1)  # chunks are padded to an even size


def _lists(data, start, end):
    """{list type: [(content start, end), ...]} of the LIST chunks in data[start:end],
    or None if one runs past `end`."""
    found = {}
    for chunk in _chunks(data, start, end):
        if chunk is None:
            return None
        fourcc, offset, size = chunk
        if fourcc == b"LIST" and size >= 4:
            found.setdefault(data[offset:offset + 4], []).append((offset + 4, offset + size))
    return found


def _video_stream(data, hdrl):
    """(stream number, declared frames, (height, width)) of the one MJPEG video
    stream in the header list, or None."""
    streams = _lists(data, *hdrl)
    if streams is None:
        return None
    video = []
    for number, (start, end) in enumerate(streams.get(b"strl", [])):
        headers = {c[0]: c[1:] for c in _chunks(data, start, end) if c is not None}
        if b"strh" not in headers or b"strf" not in headers:
            return None
        (strh, strh_size), (strf, strf_size) = headers[b"strh"], headers[b"strf"]
        if strh_size < 36 or data[strh:strh + 4] != b"vids":
            continue
        if strf_size < 20:
            return None
        start_frame, length = struct.unpack_from("<II", data, strh + 28)
        width, height = struct.unpack_from("<ii", data, strf + 4)
        compression = bytes(data[strf + 16:strf + 20]).upper()
        video.append((number, start_frame, length, (abs(height), width), compression))
    if len(video) != 1:
        return None
    number, start_frame, length, shape, compression = video[0]
    if compression not in MJPEG_FOURCCS or start_frame != 0 or min(shape) <= 0:
        return None
    return number, length, shape


def mjpeg_packets(path):
    """((height, width), [uint8 array a frame: its JPEG bytes]) of a plain MJPEG AVI,
    or None for any other file (see the module docstring)."""
    try:
        if not 12 <= os.path.getsize(path) <= MAX_BYTES:
            return None
        with open(path, "rb") as f:
            head = f.read(12)
            if head[:4] != b"RIFF" or head[8:12] != b"AVI ":
                return None  # not an AVI: read no further
            data = head + f.read()
    except OSError:
        return None
    riff_end = 8 + struct.unpack_from("<I", data, 4)[0]
    if riff_end > len(data) or len(data) - riff_end > 1:  # cut short, or AVIX follows
        return None
    lists = _lists(data, 12, riff_end)
    if not lists or len(lists.get(b"hdrl", [])) != 1 or len(lists.get(b"movi", [])) != 1:
        return None
    stream = _video_stream(data, lists[b"hdrl"][0])
    if stream is None:
        return None
    number, length, shape = stream
    names = (b"%02ddc" % number, b"%02ddb" % number)
    buffer = np.frombuffer(data, np.uint8)
    packets = []
    for chunk in _chunks(data, *lists[b"movi"][0]):
        if chunk is None:
            return None
        fourcc, offset, size = chunk
        if fourcc == b"LIST":  # 'rec ' groups: rare; FFmpeg reads them
            return None
        if fourcc in names:
            if size == 0:  # a dropped frame: FFmpeg decides what it shows
                return None
            packets.append(buffer[offset:offset + size])
    if not packets or len(packets) != length:
        return None
    return shape, packets
