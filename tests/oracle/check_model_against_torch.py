#!/usr/bin/python3
"""Independent oracle: igscope's forward pass and input gradient against PyTorch.

Creates a random fashion_cnn_v1 with `igscope init` (or reads --model, a
shipped model), runs a batch through
igscope (dump_model_outputs) and through PyTorch (torch_model.py), and checks
that the logits and the gradient of a chosen logit with respect to the input
agree with PyTorch in float64 within 1e-4 of the largest magnitude, the
gradient plus the allowance of the ReLU and max-pool decisions that float32
rounding can flip (decisions.py), which keeps the verdict the same on every
CPU. The batch mixes noise images with
images that have flat backgrounds (0 and 0.5), where max-pool windows tie and
the tie-break decides where the gradient goes.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decisions  # noqa: E402
import torch_model  # noqa: E402

TOLERANCE = 1e-4


def test_batch(rng):
    batch = [rng.uniform(0, 1, (28, 28, 1))]
    for background in (0.0, 0.5):
        img = np.full((28, 28, 1), background)
        img[8:20, 10:18, 0] = rng.uniform(0.3, 1.0, (12, 8))  # an object on a flat background
        batch.append(img)
    batch.append(np.zeros((28, 28, 1)))  # all flat
    return np.stack(batch).astype(np.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--arch", default="fashion_cnn_v1", help="architecture name for igscope init")
    ap.add_argument("--model", help="a model file to check instead of a random --arch (a shipped model)")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(0)

    model_path = args.model
    if not model_path:
        model_path = os.path.join(args.workdir, args.arch + "_random.safetensors")
        subprocess.run([args.igscope, "init", "--arch", args.arch, "--seed", str(args.seed),
                        "--out", model_path], check=True, stdout=subprocess.DEVNULL)

    rng = np.random.default_rng(args.seed)
    x = test_batch(rng)
    targets = [3, 0, 6, 9]
    input_path = os.path.join(args.workdir, "input.f32")
    x.tofile(input_path)
    out_path = os.path.join(args.workdir, "igscope_outputs.json")
    subprocess.run([args.dump, model_path, input_path, str(len(x)), ",".join(map(str, targets)), out_path],
                   check=True)
    with open(out_path) as f:
        ours = json.load(f)

    model, _ = torch_model.load_model(model_path)
    model = model.double()
    xt = torch_model.to_torch_input(x).double().requires_grad_(True)
    logits = model(xt)
    rows = torch.arange(len(x))
    logits[rows, torch.tensor(targets)].sum().backward()
    ref_logits = logits.detach().numpy()
    ref_grad = torch_model.to_nhwc(xt.grad)

    def quantity(forward, which, p):
        p = p.clone().requires_grad_(True)
        out = forward(p)
        g = torch.autograd.grad(out[torch.arange(len(which)), torch.tensor([targets[i] for i in which])].sum(), p)[0]
        return torch_model.to_nhwc(g)

    inputs = xt.detach().contiguous()
    # Each input is its own "path point", weight 1; the direction |x| bounds the gradient's flips pixel by pixel
    # when it is all ones (the gradient itself, not gradient x input).
    ones = torch.ones_like(inputs)
    if decisions.has_decisions(model):
        allow, _, fragile = decisions.allowance(decisions.DecisionNet(model), inputs, torch.zeros_like(inputs), ones,
                                                np.ones(len(x)), lambda out: out[rows, torch.tensor(targets)],
                                                quantity, float(np.abs(ref_grad).max()))
        print(f"{fragile} fragile decisions (float32 rounding may flip them)")
    else:
        allow = 0.0
        print("a smooth model: no decision for float32 rounding to flip")
    our_logits = np.array(ours["logits"], dtype=np.float64).reshape(ref_logits.shape)
    our_grad = np.array(ours["grad"], dtype=np.float64).reshape(ref_grad.shape)
    failed = False
    for name, a, b, allowed in (("logits", our_logits, ref_logits, 0.0),
                                ("input gradient", our_grad, ref_grad, allow)):
        scale = float(np.abs(b).max())
        rel = float(np.abs(a - b).max()) / max(scale, 1e-30)
        excess = float((np.abs(a - b) - allowed).max()) / max(scale, 1e-30)
        ok = excess <= TOLERANCE and scale > 0
        failed |= not ok
        print(f"{name:15s} max|diff| / max|torch| = {rel:.2e}, less the allowance {excess:.2e} "
              f"(max|torch| = {scale:.3g}) {'ok' if ok else 'FAIL'} (tolerance {TOLERANCE:g})")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
