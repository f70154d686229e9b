#!/usr/bin/python3
"""Independent oracle: `igscope attack` (FGSM and PGD) against the same
attacks computed here in PyTorch, in float64, on a model file that
torch_model loads (the shipped models, or a random one from `igscope init`).

The loss is torch.nn.functional.cross_entropy of the logits at the label (or
the negative log of the model's output when it ends in softmax or
log_softmax), its input gradient comes from autograd, and
    FGSM  x' = clamp(x + eps sign(g(x)), 0, 1)
    PGD   x_{k+1} = clamp(min(max(x_k + alpha sign(g(x_k)), x - eps), x + eps), 0, 1)
with torch.sign (sign(0) = 0). PGD is checked step by step: from igscope's
own iterate x_k (`--trace`), PyTorch's x_{k+1} must equal igscope's.

The rule, the same on every CPU. Where two inputs of a max-pool window tie
(flat background regions tie exactly) or a ReLU's input is within rounding
of 0, the gradient's route, and so its sign, is decided by rounding: even
PyTorch's own float64 gradient changes with its thread count there. So the
sign of an element counts as determined only when it survives rounding:
PyTorch computes the gradient in float64 and in float32, at the input and
at three copies of it moved by uniform noise of 1e-6 (a few float32 ulps),
and the element is determined when all eight have the same sign and the
float64 one is larger than 1e-4 of the image's largest |gradient| (the
agreement the gradient oracles demand). A determined element must get the
same perturbation within 1e-5; an element whose eight gradients are all
exactly 0 must not move; the other elements may differ by a step, and are
counted: they must be under 1% of all. PGD's iterates must stay in the
epsilon ball and in [0, 1].
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model  # noqa: E402
from idx import read_idx  # noqa: E402


def loss_gradient(model, last, x_nhwc, label, dtype=torch.float64):
    x = torch_model.to_torch_input(x_nhwc[None]).to(dtype).requires_grad_(True)
    out = model(x)
    y = torch.tensor([label])
    if last == "log_softmax":
        loss = F.nll_loss(out, y)
    elif last == "softmax":
        loss = F.nll_loss(torch.log(out), y)
    else:
        loss = F.cross_entropy(out, y)
    (g,) = torch.autograd.grad(loss, x)
    return torch_model.to_nhwc(g.double())[0]


def gradient_variants(models, last, x_nhwc, label, rng):
    """The float64 gradient, and the stack of all eight (float64 and float32,
    at x and at three copies of x moved by 1e-6 uniform noise)."""
    points = [x_nhwc.astype(np.float64)] + [x_nhwc + rng.uniform(-1e-6, 1e-6, x_nhwc.shape) for _ in range(3)]
    grads = [loss_gradient(m, last, p, label, dtype) for p in points for m, dtype in models]
    return grads[0], np.stack(grads)


def step(x_from, x0, g, size, eps, pgd):
    """One signed step from x_from, in float32 as igscope computes it."""
    x_from = x_from.astype(np.float32)
    moved = x_from + np.float32(size) * np.sign(g).astype(np.float32)
    if pgd:
        moved = np.minimum(np.maximum(moved, x0 - np.float32(eps)), x0 + np.float32(eps))
    return np.clip(moved, np.float32(0), np.float32(1))


def compare(ours, expected, g, variants, x_from, what):
    """The rule of the module docstring; returns (ambiguous count, max error on the determined elements)."""
    floor = 1e-4 * np.abs(g).max()
    signs = np.sign(variants)
    determined = (np.abs(g) > floor) & (signs == signs[0]).all(axis=0)
    err = np.abs(ours - expected)
    bad = determined & (err > 1e-5)
    if bad.any():
        i = np.argwhere(bad)[0]
        sys.exit(f"{what}: element {tuple(i)} differs by {err[tuple(i)]:.3g} (gradient {g[tuple(i)]:.3g}, "
                 f"floor {floor:.3g}): ours {ours[tuple(i)]}, PyTorch {expected[tuple(i)]}")
    zero = (variants == 0).all(axis=0)
    if (zero & (ours != x_from)).any():
        sys.exit(f"{what}: an element with a zero gradient moved")
    ambiguous = int((~determined & (err > 1e-5)).sum())
    return ambiguous, float(err[determined].max()) if determined.any() else 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--model", action="append", help="model file (repeatable); default: a random fashion_cnn_v1")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--eps", type=float, default=0.03)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.set_num_threads(2)
    models = args.model or []
    if not models:
        path = os.path.join(args.workdir, "random_cnn.safetensors")
        subprocess.run([args.igscope, "init", "--arch", "fashion_cnn_v1", "--seed", "5", "--out", path], check=True,
                       capture_output=True)
        models = [path]
    images = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    labels = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)

    total_ambiguous = total_elements = 0
    for path in models:
        model32, arch = torch_model.load_model(path)
        model64, _ = torch_model.load_model(path)
        pair = [(model64.double(), torch.float64), (model32, torch.float32)]
        rng = np.random.default_rng(0)
        nodes = arch.get("nodes") or arch.get("layers")
        last = nodes[-1]["type"] if arch.get("layers") else next(n["type"] for n in nodes if n["id"] == arch["output"])
        name = os.path.basename(path)
        worst = 0.0
        for index in range(args.images):
            x0 = images[index][:, :, None]
            label = int(labels[index])
            for attack in ("fgsm", "pgd"):
                out = os.path.join(args.workdir, f"{attack}_{index}.json")
                cmd = [args.igscope, "attack", "--model", path, "--input", f"test:{index}", "--attack", attack,
                       "--eps", str(args.eps), "--steps", str(args.steps), "--backend", "reference", "--json", out]
                if attack == "pgd":
                    cmd.append("--trace")
                subprocess.run(cmd, check=True, capture_output=True)
                r = json.load(open(out))
                if r["label"] != label:
                    sys.exit(f"{name} test:{index}: igscope attacked label {r['label']}, the test label is {label}")
                final = np.array(r["adversarial"], dtype=np.float32).reshape(x0.shape)
                if attack == "fgsm":
                    g, variants = gradient_variants(pair, last, x0, label, rng)
                    amb, err = compare(final, step(x0, x0, g, args.eps, args.eps, False), g, variants, x0,
                                       f"{name} test:{index} fgsm")
                    total_ambiguous += amb
                    total_elements += x0.size
                    worst = max(worst, err)
                    continue
                its = [np.array(t, dtype=np.float32).reshape(x0.shape) for t in r["iterates"]]
                if len(its) != args.steps or not np.array_equal(its[-1], final):
                    sys.exit(f"{name} test:{index}: PGD's trace is not {args.steps} iterates ending in the result")
                alpha = r["step_size"]
                prev = x0
                for k, it in enumerate(its):
                    g, variants = gradient_variants(pair, last, prev, label, rng)
                    amb, err = compare(it, step(prev, x0, g, alpha, args.eps, True), g, variants, prev,
                                       f"{name} test:{index} pgd step {k + 1}")
                    total_ambiguous += amb
                    total_elements += x0.size
                    worst = max(worst, err)
                    if (np.abs(it.astype(np.float64) - x0) > args.eps + 1e-6).any() or it.min() < 0 or it.max() > 1:
                        sys.exit(f"{name} test:{index}: PGD step {k + 1} left the epsilon ball or the pixel range")
                    prev = it
        print(f"{name}: FGSM and {args.steps}-step PGD at eps {args.eps} on {args.images} test images: "
              f"largest difference on determined elements {worst:.3g}")
    share = total_ambiguous / max(total_elements, 1)
    print(f"elements whose gradient sign rounding decides and whose step differs: {total_ambiguous} "
          f"of {total_elements} ({share:.3%})")
    if share > 0.01:
        sys.exit("too many elements differ")


if __name__ == "__main__":
    main()
