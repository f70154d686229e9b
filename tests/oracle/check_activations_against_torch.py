#!/usr/bin/python3
"""PyTorch op oracle for the elementwise activations (layers/activations.h).

For each activation kind, a small random model

    input [8, 8, 2] -> conv2d 3x3 pad 1 -> 4 -> <activation> -> flatten -> dense 5

is written here as a model file (the safetensors layout torch_model.py reads:
PyTorch state_dict names and layouts, the architecture in __metadata__),
evaluated by igscope (dump_model_outputs: logits and the input gradient of one
chosen logit per sample, reference backend) and by PyTorch in float64 (the
nn.Sequential torch_model.py builds from the same file, with torch.nn's own
modules: nn.Sigmoid, nn.Tanh, nn.GELU(approximate=...), nn.SiLU,
nn.LeakyReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid). Logits and gradients
must agree within 1e-4 of the largest magnitude.

The conv weights are scaled so that the pre-activations spread over about
[-10, 10], past every kink, and the script checks that every linear piece of
the kinked kinds is visited. Those kinds (leaky_relu at 0, relu6 at 0 and 6,
hardswish and hardsigmoid at -3 and 3) could take the other side of a kink
at a point within float32 rounding of it, where igscope (float32) and PyTorch
(float64) then differ by O(1) in the gradient. So the inputs are chosen so that
none does: the pre-activations are computed in float64 and a sample with any
of them within 1e-3 of a kink is redrawn (float32 rounding of a conv output
here is about 1e-6), and the verdict is the same on every CPU.
Also checks that `igscope info` names the layer with its parameters.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model  # noqa: E402

TOLERANCE = 1e-4
KINK_MARGIN = 1e-3
INPUT = [8, 8, 2]
CONV_OUT = 4
CLASSES = 5
BATCH = 4

# (activation spec, its kinks, the description `igscope info` prints)
KINDS = [
    ({"type": "sigmoid"}, [], "sigmoid"),
    ({"type": "tanh"}, [], "tanh"),
    ({"type": "gelu"}, [], 'gelu approximate="none"'),
    ({"type": "gelu", "approximate": "tanh"}, [], 'gelu approximate="tanh"'),
    ({"type": "silu"}, [], "silu"),
    ({"type": "leaky_relu"}, [0.0], "leaky_relu negative_slope=0.01"),
    ({"type": "leaky_relu", "negative_slope": 0.2}, [0.0], "leaky_relu negative_slope=0.2"),
    ({"type": "relu6"}, [0.0, 6.0], "relu6"),
    ({"type": "hardswish"}, [-3.0, 3.0], "hardswish"),
    ({"type": "hardsigmoid"}, [-3.0, 3.0], "hardsigmoid"),
]


def random_model(rng, activation):
    arch = {"name": "activation_" + activation["type"], "input": INPUT,
            "layers": [{"type": "conv2d", "out_channels": CONV_OUT, "kernel": 3, "padding": 1},
                       activation, {"type": "flatten"}, {"type": "dense", "out_features": CLASSES}]}
    fan_in = 9 * INPUT[2]
    # Inputs are uniform in [-1, 1] (variance 1/3): pre-activations of std ~4.
    conv_std = 4.0 / np.sqrt(fan_in / 3.0)
    features = INPUT[0] * INPUT[1] * CONV_OUT
    tensors = {
        "0.weight": rng.normal(0, conv_std, (CONV_OUT, INPUT[2], 3, 3)),
        "0.bias": rng.uniform(-1, 1, CONV_OUT),
        "3.weight": rng.normal(0, 1 / np.sqrt(features), (CLASSES, features)),
        "3.bias": rng.uniform(-0.1, 0.1, CLASSES),
    }
    return arch, {k: v.astype(np.float32) for k, v in tensors.items()}


def pre_activations(model, x):
    """The conv layer's outputs, float64, for an NHWC float32 batch."""
    with torch.no_grad():
        return model[0](torch_model.to_torch_input(x).double()).numpy()


def choose_inputs(rng, model, kinks):
    """BATCH samples, each redrawn until no pre-activation is within KINK_MARGIN of a kink."""
    samples, redrawn = [], 0
    while len(samples) < BATCH:
        x = rng.uniform(-1, 1, [1] + INPUT).astype(np.float32)
        z = pre_activations(model, x)
        if kinks and min(np.abs(z - k).min() for k in kinks) <= KINK_MARGIN:
            redrawn += 1
            continue
        samples.append(x[0])
    return np.stack(samples), redrawn


def check_kind(args, rng, activation, kinks, description):
    name = activation["type"] + ("_" + activation["approximate"] if "approximate" in activation else "") + \
        ("_%g" % activation["negative_slope"] if "negative_slope" in activation else "")
    arch, tensors = random_model(rng, activation)
    model_path = os.path.join(args.workdir, name + ".safetensors")
    torch_model.write_safetensors(model_path, tensors, {"architecture": json.dumps(arch)})

    model, _ = torch_model.load_model(model_path)
    model = model.double()
    x, redrawn = choose_inputs(rng, model, kinks)
    z = pre_activations(model, x)
    margin = min((np.abs(z - k).min() for k in kinks), default=float("inf"))
    # Every linear piece between (and beyond) the kinks is visited.
    edges = [-np.inf] + kinks + [np.inf]
    pieces = [int(((z > lo) & (z < hi)).sum()) for lo, hi in zip(edges[:-1], edges[1:])]

    targets = [int(t) for t in rng.integers(0, CLASSES, BATCH)]
    input_path = os.path.join(args.workdir, name + "_input.f32")
    x.tofile(input_path)
    out_path = os.path.join(args.workdir, name + "_outputs.json")
    subprocess.run([args.dump, model_path, input_path, str(BATCH), ",".join(map(str, targets)), out_path], check=True)
    with open(out_path) as f:
        ours = json.load(f)

    xt = torch_model.to_torch_input(x).double().requires_grad_(True)
    logits = model(xt)
    logits[torch.arange(BATCH), torch.tensor(targets)].sum().backward()
    ref_logits = logits.detach().numpy()
    ref_grad = torch_model.to_nhwc(xt.grad)

    our_logits = np.array(ours["logits"]).reshape(ref_logits.shape)
    our_grad = np.array(ours["grad"]).reshape(ref_grad.shape)
    logit_err = np.abs(our_logits - ref_logits).max() / np.abs(ref_logits).max()
    grad_err = np.abs(our_grad - ref_grad).max() / np.abs(ref_grad).max()

    info = subprocess.run([args.igscope, "info", model_path], check=True, capture_output=True, text=True).stdout
    described = description in info

    ok = logit_err <= TOLERANCE and grad_err <= TOLERANCE and min(pieces) > 0 and described
    print(f"{'ok  ' if ok else 'FAIL'} {name:22s} logits {logit_err:.2e}  input grad {grad_err:.2e}  "
          f"pre-activations per piece {pieces}, kink margin {margin:.2g} ({redrawn} samples redrawn)"
          + ("" if described else f"  `igscope info` lacks '{description}'"))
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(0)
    rng = np.random.default_rng(args.seed)
    results = [check_kind(args, rng, *kind) for kind in KINDS]
    if not all(results):
        print(f"{results.count(False)} of {len(results)} activation kinds disagree with PyTorch")
        return 1
    print(f"all {len(results)} activation kinds agree with PyTorch within {TOLERANCE:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
