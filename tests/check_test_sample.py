#!/usr/bin/python3
"""`igscope sample` writes the same file twice for the same seed, a different
choice for another seed, and every image equals the test-set image at its
index (the IDX files read here with gzip + numpy, independently of igscope)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "oracle"))
from idx import read_idx  # noqa: E402


def sample(igscope, out, seed, per_class=5):
    subprocess.run([igscope, "sample", "--per-class", str(per_class), "--seed", str(seed), "--out", out],
                   check=True, capture_output=True)
    with open(out, "rb") as f:
        return f.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    images = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz"))
    with tempfile.TemporaryDirectory() as tmp:
        a = sample(args.igscope, os.path.join(tmp, "a.json"), 4)
        b = sample(args.igscope, os.path.join(tmp, "b.json"), 4)
        c = sample(args.igscope, os.path.join(tmp, "c.json"), 5)
    if a != b:
        sys.exit("the same seed gave different files")
    if a == c:
        sys.exit("different seeds gave the same file")
    doc = json.loads(a)
    assert len(doc["images"]) == 50, len(doc["images"])
    per_class = np.bincount([im["label"] for im in doc["images"]], minlength=10)
    assert (per_class == 5).all(), per_class
    for im in doc["images"]:
        i = im["index"]
        assert labels[i] == im["label"], (i, labels[i], im["label"])
        assert np.array_equal(np.array(im["pixels"], dtype=np.uint8).reshape(28, 28), images[i]), i
    print(f"{len(doc['images'])} images match the test set; reproducible per seed")


if __name__ == "__main__":
    main()
