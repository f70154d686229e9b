#!/usr/bin/env python3
"""batchnorm against PyTorch: a random conv2d -> batchnorm -> relu -> flatten
-> dense -> batchnorm -> dense model with non-trivial affine parameters and
running statistics (and a counter, stored as I64 as PyTorch stores it) is
written from PyTorch's state_dict in the layout igscope's loader reads,
loaded back by torch_model.py with load_state_dict(strict=True), and
evaluated in float64; igscope (dump_model_outputs, evaluation mode, reference
backend) must give the same logits and input gradients of a chosen logit
within 1e-4 of the largest magnitude of each.

The model has no max-pool, so the only decisions are the ReLUs': inputs are
smooth random images, and a batch is redrawn if any ReLU pre-activation is
within 1e-4 (relative to the largest) of 0 in float64, where float32 rounding
could flip the decision; the script says how many batches it redrew.
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
from torch_model import build_sequential, load_model, to_nhwc, to_torch_input, write_safetensors  # noqa: E402

ARCH = {
    "name": "batchnorm_oracle",
    "input": [8, 8, 3],
    "layers": [
        {"type": "conv2d", "out_channels": 6, "kernel": 3, "padding": 1},
        {"type": "batchnorm", "eps": 1e-3, "momentum": 0.2},
        {"type": "relu"},
        {"type": "flatten"},
        {"type": "dense", "out_features": 16},
        {"type": "batchnorm"},
        {"type": "dense", "out_features": 5},
    ],
}
TOLERANCE = 1e-4


def smooth_images(rng, n, h, w, c):
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = np.zeros((n, h, w, c))
    for i in range(n):
        for k in range(c):
            for _ in range(3):
                fy, fx, ph = rng.uniform(0.5, 2.5), rng.uniform(0.5, 2.5), rng.uniform(0, 2 * np.pi)
                out[i, :, :, k] += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
    return out.astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    model = build_sequential(ARCH)
    with torch.no_grad():
        for m in model:
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                sign = torch.where(torch.rand(c) < 0.3, -1.0, 1.0)
                m.weight.copy_(sign * (0.5 + torch.rand(c)))
                m.bias.copy_(torch.rand(c) - 0.5)
                m.running_mean.copy_(0.5 * torch.randn(c))
                m.running_var.copy_(0.3 + 2.7 * torch.rand(c))
                m.num_batches_tracked.fill_(17)
    path = os.path.join(args.workdir, "batchnorm_model.safetensors")
    write_safetensors(path, model.state_dict(), {"format": "pt", "architecture": json.dumps(ARCH)})
    header_len = struct.unpack("<Q", open(path, "rb").read(8))[0]
    header = json.loads(open(path, "rb").read()[8 : 8 + header_len])
    assert header["1.num_batches_tracked"]["dtype"] == "I64", header["1.num_batches_tracked"]

    # PyTorch reads the file back on its own (strict names, shapes and dtypes).
    torch_model, _ = load_model(path)
    torch_model = torch_model.double().eval()
    assert int(torch_model[1].num_batches_tracked) == 17

    batch, redrawn = 6, 0
    while True:
        x = smooth_images(rng, batch, *ARCH["input"])
        with torch.no_grad():
            pre = torch_model[:2](to_torch_input(x).double())
        margin = pre.abs().min().item() / pre.abs().max().item()
        if margin > TOLERANCE:
            break
        redrawn += 1
        if redrawn > 50:
            sys.exit("could not draw inputs away from the ReLU decisions")
    print(f"inputs: smallest ReLU pre-activation {margin:.2e} of the largest; {redrawn} batch(es) redrawn")

    targets = rng.integers(0, 5, size=batch)
    xt = to_torch_input(x).double().requires_grad_(True)
    logits = torch_model(xt)
    logits.gather(1, torch.from_numpy(targets).view(-1, 1)).sum().backward()
    want_logits = logits.detach().numpy()
    want_grad = to_nhwc(xt.grad.detach())

    input_path = os.path.join(args.workdir, "input.f32")
    x.astype("<f4").tofile(input_path)
    out_path = os.path.join(args.workdir, "igscope.json")
    subprocess.run([args.dump, path, input_path, str(batch), ",".join(map(str, targets)), out_path], check=True)
    got = json.load(open(out_path))
    ok = True
    for what, want, have in [("logits", want_logits, got["logits"]), ("input gradient", want_grad, got["grad"])]:
        have = np.asarray(have, dtype=np.float64).reshape(want.shape)
        scale = np.abs(want).max()
        err = np.abs(have - want).max() / scale
        good = err <= TOLERANCE
        ok &= good
        print(f"{what}: max |igscope - torch| = {err:.2e} of the largest magnitude {scale:.3g} "
              f"({'ok' if good else 'FAIL'}, tolerance {TOLERANCE:g})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
