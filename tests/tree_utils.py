"""Helpers shared by the tests of the data generators."""

import os


def read_tree(root):
    """{relative path: bytes} of every file under `root`, to compare whole outputs."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out
