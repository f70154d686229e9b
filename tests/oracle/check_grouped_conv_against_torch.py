#!/usr/bin/python3
"""PyTorch op oracle for conv2d with groups (depthwise included) and dilation.

Small models, each written here as igscope architecture JSON:

  grouped          conv2d groups 2 -> flatten -> dense
  depthwise        depthwise 3x3, stride 2, 20 channels (not a whole number
                   of SIMD vectors) -> flatten -> dense
  multiplier       depthwise (3, 2) kernel, channel multiplier 2, 3 channels
  dilated          conv2d 3x3 dilation 2, same padding
  dilated_grouped  conv2d groups 3, dilation (2, 1), stride (2, 1)
  mobilenet_like   conv 3x3 s2 -> relu -> [depthwise 3x3 -> relu -> pointwise
                   1x1 -> relu] x 2 (the second depthwise with stride 2) ->
                   depthwise 3x3 dilation 2 -> relu -> flatten -> dense

get random He-scaled weights, are written with torch_model.write_safetensors
(PyTorch state_dict names and layouts: weights [out, in / groups, kh, kw]),
read back by torch_model.py (nn.Conv2d with groups= and dilation= from the
JSON; load_state_dict(strict=True), so a wrong weight shape fails) and
evaluated by PyTorch in float64. igscope (dump_model_outputs: the logits and
the input gradient of one chosen logit per sample) must agree within 1e-4 of
the largest magnitude of each, on every CPU backend dump_model_outputs offers
(reference, simd, eigen, xnnpack: their depthwise, grouped and dilated paths).

The only decisions are the ReLUs' (no max-pool): a sample is redrawn while
any ReLU input is within 1e-4 of its layer's largest magnitude of 0 in
float64, where float32 rounding could flip it (it is about 1e-6 here), so
the verdict is the same on every CPU. The script says how many it redrew.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model  # noqa: E402

TOLERANCE = 1e-4
MARGIN = 1e-4
BATCH = 3
CLASSES = 4


def conv(out, kernel, **extra):
    return {"type": "conv2d", "out_channels": out, "kernel": kernel, **extra}


RELU, FLATTEN, DENSE = {"type": "relu"}, {"type": "flatten"}, {"type": "dense", "out_features": CLASSES}

MODELS = {
    "grouped": ([9, 10, 4], [conv(6, 3, padding=1, groups=2), FLATTEN, DENSE]),
    "depthwise": ([11, 9, 20], [conv(20, 3, stride=2, padding=1, groups=20), FLATTEN, DENSE]),
    "multiplier": ([8, 7, 3], [conv(6, [3, 2], padding=[1, 0], groups=3), FLATTEN, DENSE]),
    "dilated": ([12, 11, 3], [conv(5, 3, padding=2, dilation=2), FLATTEN, DENSE]),
    "dilated_grouped": ([10, 12, 6], [conv(6, 3, stride=[2, 1], padding=[2, 1], dilation=[2, 1], groups=3),
                                      FLATTEN, DENSE]),
    "mobilenet_like": ([16, 15, 3], [
        conv(16, 3, stride=2, padding=1), RELU,
        conv(16, 3, padding=1, groups=16), RELU,
        conv(24, 1), RELU,
        conv(24, 3, stride=2, padding=1, groups=24), RELU,
        conv(32, 1), RELU,
        conv(32, 3, padding=2, dilation=2, groups=32), RELU,
        FLATTEN, DENSE]),
}


def relu_inputs(model, x):
    """The input of every nn.ReLU of the model for the batch x."""
    seen = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
             for m in model if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


def fragile(model, x):
    """Whether a ReLU input of the one-sample batch x is within MARGIN of its
    layer's largest magnitude of 0."""
    for z in relu_inputs(model, x):
        if z.abs().min().item() <= MARGIN * z.abs().max().item():
            return True
    return False


def draw_inputs(model, shape, rng):
    samples, redrawn = [], 0
    while len(samples) < BATCH:
        x = rng.uniform(-1, 1, size=[1] + shape).astype(np.float32)
        if fragile(model, torch_model.to_torch_input(x).double()):
            redrawn += 1
            if redrawn > 500:
                sys.exit("could not draw inputs away from the ReLU decisions")
            continue
        samples.append(x)
    return np.concatenate(samples), redrawn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seed", type=int, default=31)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    listed = subprocess.run([args.dump, "--backends"], check=True, capture_output=True, text=True).stdout
    backends = [b.strip() for b in listed.split(",") if b.strip() and b.strip() != "cuda"]
    print(f"backends: {', '.join(backends)}")
    ok = True
    for name, (shape, layers) in MODELS.items():
        arch = {"name": name, "input": shape, "layers": layers}
        model = torch_model.build_sequential(arch)
        with torch.no_grad():
            for m in model:
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    fan_in = m.weight[0].numel()
                    m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5)
                    m.bias.uniform_(-0.5, 0.5)
        path = os.path.join(args.workdir, f"{name}.safetensors")
        torch_model.write_safetensors(path, model.state_dict(), {"format": "pt", "architecture": json.dumps(arch)})
        torch_net, _ = torch_model.load_model(path)  # strict: names and [out, in / groups, kh, kw] shapes
        torch_net = torch_net.double().eval()
        for spec, m in zip(layers, torch_net):
            if spec["type"] == "conv2d":
                assert m.groups == spec.get("groups", 1), (m, spec)
                assert list(m.dilation) == list(torch_model.pair(spec.get("dilation", 1))), (m, spec)

        x, redrawn = draw_inputs(torch_net, shape, rng)
        targets = rng.integers(0, CLASSES, size=BATCH)
        xt = torch_model.to_torch_input(x).double().requires_grad_(True)
        logits = torch_net(xt)
        logits.gather(1, torch.from_numpy(targets).view(-1, 1)).sum().backward()
        want = {"logits": logits.detach().numpy(), "input gradient": torch_model.to_nhwc(xt.grad.detach())}

        input_path = os.path.join(args.workdir, f"{name}_input.f32")
        x.astype("<f4").tofile(input_path)
        print(f"{name}: {len(layers)} layers, {redrawn} sample(s) redrawn away from the ReLU decisions")
        for backend in backends:
            out_path = os.path.join(args.workdir, f"{name}_{backend}.json")
            subprocess.run([args.dump, path, input_path, str(BATCH), ",".join(map(str, targets)), out_path, backend],
                           check=True)
            got = json.load(open(out_path))
            for what, key in [("logits", "logits"), ("input gradient", "grad")]:
                have = np.asarray(got[key], dtype=np.float64).reshape(want[what].shape)
                scale = np.abs(want[what]).max()
                err = np.abs(have - want[what]).max() / scale
                good = bool(err <= TOLERANCE) and np.isfinite(have).all()
                ok &= good
                print(f"  {backend:9s} {what}: max |igscope - torch| = {err:.2e} of the largest magnitude "
                      f"{scale:.3g} ({'ok' if good else 'FAIL'}, tolerance {TOLERANCE:g})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
