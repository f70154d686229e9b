#!/usr/bin/python3
"""Independent oracle: `igscope classmaps` against per-class means of IG computed in PyTorch.

On a random fashion_cnn_smelu (from `igscope init`), for the first --limit
Fashion-MNIST test images read here from the Debian package's IDX files,
PyTorch computes IG (black baseline, Gauss-Legendre nodes from numpy) of
each image's labelled class in float64, and averages the signed and the
absolute maps per class. Checks: the per-class counts, both means within
1e-4 of the largest |mean| of each class plus the class mean of each image's
allowance for the ReLU and max-pool decisions that float32 rounding can flip
(decisions.py; | |a| - |b| | <= |a - b|, so the absolute means get the same),
and that every class with images has its two PNG heatmaps of the documented
size. igscope runs its default backend.
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import idx  # noqa: E402
import torch_model  # noqa: E402
import decisions  # noqa: E402

TOLERANCE = 1e-4


def torch_ig(model, images, labels, steps, dtype):
    """IG of each image's labelled class (black baseline) and, in float64, each one's allowance."""
    x_all, w = np.polynomial.legendre.leggauss(steps)
    alphas, weights = (x_all + 1) / 2, w / 2
    out, allowances = [], []
    net = decisions.DecisionNet(model) if dtype == torch.float64 else None
    for img, label in zip(images, labels):
        x = torch.from_numpy(img).to(dtype)
        pts = (torch.from_numpy(alphas).to(dtype).view(-1, 1, 1) * x).unsqueeze(1).requires_grad_(True)
        model(pts)[:, int(label)].sum().backward()
        grads = pts.grad[:, 0].double().numpy()
        out.append(img * np.tensordot(weights, grads, axes=1))
        if net is not None:
            def quantity(forward, rows, p, label=int(label), x=x):
                p = p.clone().requires_grad_(True)
                g = torch.autograd.grad(forward(p)[:, label].sum(), p)[0][:, 0]
                return (torch.from_numpy(weights[rows]).view(-1, 1, 1) * x * g).detach().numpy()
            zero = torch.zeros(1, 1, 28, 28, dtype=dtype)
            p = pts.detach()
            allow, _, _ = decisions.allowance(net, p, decisions.path_error(zero, x.view(1, 1, 28, 28)).expand_as(p),
                                              x.abs().view(1, 1, 28, 28).expand_as(p), weights,
                                              lambda out, label=int(label): out[:, label], quantity,
                                              float(np.abs(out[-1]).max()))
            allowances.append(np.broadcast_to(allow, img.shape))
    return np.array(out), (np.array(allowances) if net is not None else None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--steps", type=int, default=16)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    model_path = os.path.join(args.workdir, "fashion_cnn_smelu_classmaps.safetensors")
    subprocess.run([args.igscope, "init", "--arch", "fashion_cnn_smelu", "--seed", "13", "--out", model_path],
                   check=True, stdout=subprocess.DEVNULL)
    out_dir = os.path.join(args.workdir, "maps")
    r = subprocess.run([args.igscope, "classmaps", "--model", model_path, "--limit", str(args.limit), "--steps",
                        str(args.steps), "--baseline", "black", "--scale", "4",
                        "--out", out_dir],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL: igscope classmaps exited {r.returncode}: {r.stderr.strip()}")
        sys.exit(1)
    with open(os.path.join(out_dir, "classmaps.json")) as f:
        ours = json.load(f)
    data_dir = os.environ.get("IGSCOPE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    images = idx.read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"))[: args.limit].astype(np.float64) / 255.0
    labels = idx.read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz"))[: args.limit]
    model64, _ = torch_model.load_model(model_path)
    model64 = model64.double()
    model32, _ = torch_model.load_model(model_path)
    ig64, allow64 = torch_ig(model64, images, labels, args.steps, torch.float64)
    ig32, _ = torch_ig(model32, images, labels, args.steps, torch.float32)
    failed = []

    def check(cond, what):
        if not cond:
            failed.append(what)
            print(f"FAIL: {what}")

    check(ours["images"] == args.limit, f"images {ours['images']} != {args.limit}")
    print(f"{'class':12s} {'count':>5s} {'signed':>9s} {'abs':>9s} {'f32-f64':>9s}")
    for entry in ours["classes"]:
        c = entry["index"]
        sel = labels == c
        check(entry["count"] == int(sel.sum()), f"class {c}: count {entry['count']} != {int(sel.sum())}")
        if not sel.any():
            check(np.abs(entry["mean_signed"]).max() == 0.0, f"class {c}: no images but a non-zero map")
            continue
        for key, want, want32 in (("mean_signed", ig64[sel].mean(0), ig32[sel].mean(0)),
                                  ("mean_abs", np.abs(ig64[sel]).mean(0), np.abs(ig32[sel]).mean(0))):
            got = np.array(entry[key]).reshape(28, 28)
            scale = np.abs(want).max()
            rel = np.abs(got - want).max() / max(scale, 1e-30)
            excess = (np.abs(got - want) - allow64[sel].mean(0)).max() / max(scale, 1e-30)
            spread = np.abs(want32 - want).max() / max(scale, 1e-30)
            entry[key + "_rel"] = rel
            check(scale > 0, f"class {c} {key}: all zero")
            check(excess <= TOLERANCE,
                  f"class {c} {key}: max(|diff| - allowance) / max|mean| = {excess:.2e} (max|diff| {rel:.2e})")
            entry["spread"] = spread
        print(f"{entry['name']:12s} {entry['count']:5d} {entry['mean_signed_rel']:9.1e} {entry['mean_abs_rel']:9.1e} "
              f"{entry['spread']:9.1e}")
        for png in (entry["signed_png"], entry["abs_png"]):
            with open(os.path.join(out_dir, png), "rb") as f:
                head = f.read(24)
            check(head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24]) == (112, 112),
                  f"class {c}: {png} is not a 112x112 PNG")
    r = subprocess.run([args.igscope, "classmaps", "--model", model_path, "--limit", "2", "--baseline", "nope",
                        "--out", out_dir], capture_output=True, text=True)
    check(r.returncode == 1 and "unknown kind 'nope'" in r.stderr, f"bad baseline: {r.stderr.strip()}")
    if failed:
        print(f"{len(failed)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
