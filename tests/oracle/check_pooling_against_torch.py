#!/usr/bin/python3
"""PyTorch op oracle for the pooling kinds (layers/maxpool2d.h, layers/avgpool2d.h).

For each variant, a small random model

    input -> conv2d -> maxpool2d (padding, ceil_mode) -> avgpool2d (padding,
    ceil_mode, count_include_pad) -> global_avgpool -> flatten -> dense 5

is written here as a model file (torch_model.write_safetensors: PyTorch
state_dict names and layouts, the architecture in __metadata__), read back by
PyTorch (torch_model.load_model: nn.MaxPool2d(padding, ceil_mode),
nn.AvgPool2d(...), nn.AdaptiveAvgPool2d(1), load_state_dict(strict=True)) and
evaluated in float64, and evaluated by igscope (dump_model_outputs: logits and
the input gradient of one chosen logit per sample, reference backend). Logits
and gradients must agree within 1e-4 of the largest magnitude of each.

The variants cover ceil_mode's partial windows (and the window its rule
drops), windows that overhang the padded input, count_include_pad both ways,
padding up to half the window, non-square windows and mixed strides; the
script prints each variant's shapes, and (with --igscope) checks that
`igscope info` describes each pooling layer with every hyper-parameter that
igscope writes for it.

The only decisions are the max-pools': a sample whose max-pool windows have
a best and second-best input value within 1e-4 (relative to the largest
magnitude) of each other in float64 is redrawn, since float32 rounding could
pick the other one there (an O(1) change in the gradient); the script says
how many samples it redrew.
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
TIE_MARGIN = 1e-4
CLASSES = 5
BATCH = 4


def model_arch(name, input_shape, conv, maxpool, avgpool):
    return {
        "name": name,
        "input": input_shape,
        "layers": [
            dict({"type": "conv2d"}, **conv),
            dict({"type": "maxpool2d"}, **maxpool),
            dict({"type": "avgpool2d"}, **avgpool),
            {"type": "global_avgpool"},
            {"type": "flatten"},
            {"type": "dense", "out_features": CLASSES},
        ],
    }


VARIANTS = [
    # 8x8 -> maxpool 3/2 pad 1 ceil: 5x5 (the last window runs past the padded input) -> avgpool 2/2 pad 1
    # ceil, padding counted: 3x3 (ceil's rule drops the window that would start in the right padding).
    model_arch("ceil_include_pad", [8, 8, 2], {"out_channels": 4, "kernel": 3, "padding": 1},
               {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
               {"kernel": 2, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": True}),
    # The same without counting the padding in the divisor.
    model_arch("ceil_exclude_pad", [8, 8, 2], {"out_channels": 4, "kernel": 3, "padding": 1},
               {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
               {"kernel": 2, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}),
    # Odd sizes, non-square windows, mixed strides; the avgpool's ceil windows
    # overhang the padded input; floor max-pool with padding.
    model_arch("mixed", [9, 7, 3], {"out_channels": 5, "kernel": [3, 2], "stride": [1, 1], "padding": [1, 0]},
               {"kernel": [3, 2], "stride": [2, 1], "padding": [1, 1]},
               {"kernel": [3, 3], "stride": [2, 3], "padding": [1, 0], "ceil_mode": True,
                "count_include_pad": False}),
    # Padding = half the window (2 on a 4x4 window), stride 3, ceil; avgpool
    # floor with padding counted.
    model_arch("wide_pad", [10, 11, 1], {"out_channels": 3, "kernel": 3},
               {"kernel": 4, "stride": 3, "padding": 2, "ceil_mode": True},
               {"kernel": 3, "stride": 1, "padding": 1}),
    # ceil_mode with no padding: partial windows on the right and bottom only.
    model_arch("ceil_no_pad", [9, 9, 2], {"out_channels": 4, "kernel": 3},
               {"kernel": 2, "stride": 2, "ceil_mode": True},
               {"kernel": 3, "stride": 2, "ceil_mode": True, "count_include_pad": False}),
]


def smooth_images(rng, n, h, w, c):
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = np.zeros((n, h, w, c))
    for i in range(n):
        for k in range(c):
            for _ in range(3):
                fy, fx, ph = rng.uniform(0.5, 2.5), rng.uniform(0.5, 2.5), rng.uniform(0, 2 * np.pi)
                out[i, :, :, k] += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
    return out.astype(np.float32)


def smallest_window_gaps(pre, pool):
    """Per sample, the smallest gap between the best and second-best input
    value of any max-pool window (input NCHW, float64; padding is -inf)."""
    kh, kw = pool.kernel_size
    sh, sw = pool.stride
    ph, pw = pool.padding
    _, _, oh, ow = pool(pre).shape
    x = pre.numpy()
    n, c, h, w = x.shape
    grid = np.full((n, c, h + 2 * ph + kh, w + 2 * pw + kw), -np.inf)  # room for windows past the padded input
    grid[:, :, ph:ph + h, pw:pw + w] = x
    gaps = np.full(n, np.inf)
    for oy in range(oh):
        for ox in range(ow):
            window = grid[:, :, oy * sh:oy * sh + kh, ox * sw:ox * sw + kw].reshape(n, c, -1)
            top = np.sort(window, axis=2)[:, :, ::-1]
            gap = top[:, :, 0] - top[:, :, 1] if top.shape[2] > 1 else np.full((n, c), np.inf)
            gap = np.where(np.isfinite(gap), gap, np.inf)  # one input cell in the window: no rival
            gaps = np.minimum(gaps, gap.min(axis=1))
    return gaps


def written_json(spec):
    """The entry as igscope writes it back: kernel and stride as [h, w];
    maxpool2d adds padding and ceil_mode only when not the defaults,
    avgpool2d writes every hyper-parameter."""
    t = spec["type"]
    if t == "global_avgpool":
        return {"type": t}
    out = {"type": t, "kernel": list(torch_model.pair(spec["kernel"])),
           "stride": list(torch_model.pair(spec.get("stride", spec["kernel"])))}
    padding, ceil = list(torch_model.pair(spec.get("padding", 0))), spec.get("ceil_mode", False)
    if t == "avgpool2d" or padding != [0, 0]:
        out["padding"] = padding
    if t == "avgpool2d" or ceil:
        out["ceil_mode"] = ceil
    if t == "avgpool2d":
        out["count_include_pad"] = spec.get("count_include_pad", True)
    return out


def describe(entry):
    """`igscope info`'s one-line description: the type, then key=value in key
    order, pairs as HxW."""
    words = [entry["type"]]
    for key in sorted(k for k in entry if k != "type"):
        v = entry[key]
        words.append(f"{key}=" + ("x".join(map(str, v)) if isinstance(v, list) else json.dumps(v)))
    return " ".join(words)


def check_variant(arch, args, rng):
    workdir = os.path.join(args.workdir, arch["name"])
    os.makedirs(workdir, exist_ok=True)
    model = torch_model.build_sequential(arch)
    with torch.no_grad():
        for m in model:
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.uniform_(-1.0, 1.0)
                m.bias.uniform_(-0.5, 0.5)
    path = os.path.join(workdir, "model.safetensors")
    torch_model.write_safetensors(path, model.state_dict(), {"format": "pt", "architecture": json.dumps(arch)})
    torch_net, _ = torch_model.load_model(path)  # PyTorch reads the file back on its own, strictly
    torch_net = torch_net.double().eval()
    pool = torch_net[1]
    assert isinstance(pool, nn.MaxPool2d) and isinstance(torch_net[2], nn.AvgPool2d)
    assert isinstance(torch_net[3], nn.AdaptiveAvgPool2d)

    # Samples away from max-pool near-ties, drawn one by one.
    samples, redrawn = [], 0
    while len(samples) < BATCH:
        x = smooth_images(rng, 1, *arch["input"])
        with torch.no_grad():
            pre = torch_net[:1](torch_model.to_torch_input(x).double())
        if smallest_window_gaps(pre, pool)[0] > TIE_MARGIN * pre.abs().max().item():
            samples.append(x)
        else:
            redrawn += 1
            if redrawn > 200:
                sys.exit(f"{arch['name']}: could not draw inputs away from max-pool ties")
    x = np.concatenate(samples)

    targets = rng.integers(0, CLASSES, size=BATCH)
    xt = torch_model.to_torch_input(x).double().requires_grad_(True)
    shapes, h = [], xt
    for m in torch_net:
        h = m(h)
        shapes.append(list(h.shape[1:]))
    logits = h
    logits.gather(1, torch.from_numpy(targets).view(-1, 1)).sum().backward()
    want_logits = logits.detach().numpy()
    want_grad = torch_model.to_nhwc(xt.grad.detach())
    print(f"{arch['name']}: shapes (NCHW) {shapes[:4]}; {redrawn} sample(s) redrawn")

    input_path = os.path.join(workdir, "input.f32")
    x.astype("<f4").tofile(input_path)
    out_path = os.path.join(workdir, "igscope.json")
    subprocess.run([args.dump, path, input_path, str(BATCH), ",".join(map(str, targets)), out_path], check=True)
    got = json.load(open(out_path))
    ok = True
    for what, want, have in [("logits", want_logits, got["logits"]), ("input gradient", want_grad, got["grad"])]:
        have = np.asarray(have, dtype=np.float64).reshape(want.shape)
        scale = np.abs(want).max()
        err = np.abs(have - want).max() / scale
        good = bool(err <= TOLERANCE)
        ok &= good
        print(f"  {what}: max |igscope - torch| = {err:.2e} of the largest magnitude {scale:.3g} "
              f"({'ok' if good else 'FAIL'}, tolerance {TOLERANCE:g})")

    if args.igscope:
        info = subprocess.run([args.igscope, "info", path], check=True, capture_output=True, text=True).stdout
        expected = [describe(written_json(spec)) for spec in arch["layers"][1:4]]
        missing = [e for e in expected if e not in info]
        if missing:
            print(f"  `igscope info` lacks {missing}:\n{info}")
            ok = False
        else:
            print(f"  igscope info: {'; '.join(expected)}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--igscope", help="also check that `igscope info` describes the layers")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seed", type=int, default=21)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    results = [check_variant(arch, args, rng) for arch in VARIANTS]
    print(f"{sum(results)} of {len(results)} variants agree")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
