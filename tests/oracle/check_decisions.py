#!/usr/bin/python3
"""Checks of decisions.py's graph and activation rules that the IG oracle's
cases rarely reach, against PyTorch's autograd and derivatives written out
here (no igscope needed):

1. kinks: for LeakyReLU, ReLU6, Hardsigmoid and Hardswish, a unit placed just
   below, just above and exactly at each kink is found fragile, and the
   input gradient with the flip equals the one computed with the slope of
   the piece across the kink (slopes written out here); without flips, the
   gradient is PyTorch's, PyTorch's side at an exact kink included;
2. |J|^T (abs_backward) on a graph with nonnegative weights and positive
   values, where |J| = J: it must equal autograd's gradient of the seeded
   values through every node kind (conv, batchnorm, add with fan-out,
   concat, broadcast mul, max-pool, average pools, sigmoid, flatten, dense);
3. the rounding scales: PyTorch's float32 values stray at most MARGIN / 2
   scales from float64 at every node with a rounding model, on random graph
   models (make_graph_model.py) and a chain with average pools, on
   Fashion-MNIST-like path points.
"""
import copy
import os
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decisions  # noqa: E402
import make_graph_model  # noqa: E402
import torch_model  # noqa: E402

# (module, kinks, slope below and above each kink as written in PyTorch's docs)
KINKED = [
    (nn.LeakyReLU(0.1), [0.0], lambda z: np.where(z > 0, 1.0, 0.1)),
    (nn.ReLU6(), [0.0, 6.0], lambda z: np.where((z > 0) & (z < 6), 1.0, 0.0)),
    (nn.Hardsigmoid(), [-3.0, 3.0], lambda z: np.where((z > -3) & (z < 3), 1 / 6, 0.0)),
    (nn.Hardswish(), [-3.0, 3.0], lambda z: np.where(z < -3, 0.0, np.where(z <= 3, (2 * z + 3) / 6, 1.0))),
]


def check_kinks(failed):
    torch.manual_seed(3)
    for act, kinks, slope in KINKED:
        for k in kinks:
            for offset in (-1e-11, 1e-11, 0.0):
                lin1, lin2 = nn.Linear(4, 5).double(), nn.Linear(5, 3).double()
                model = nn.Sequential(lin1, act, lin2)
                x = torch.rand(1, 4, dtype=torch.float64)
                with torch.no_grad():
                    if offset == 0.0:
                        # z exactly at the kink: x = 0, bias = kink
                        x.zero_()
                        lin1.bias[0] = k
                    else:
                        lin1.bias[0] += k + offset - lin1(x)[0, 0]
                    z = lin1(x)[0].numpy()
                net = decisions.DecisionNet(model)
                error = decisions.path_error(torch.zeros_like(x), x)
                found = [f for f in net.fragile(x, error, torch.ones_like(x), lambda out: out[:, 0])
                         if f[1] == 1 and f[2][1] == 0]
                what = f"{type(act).__name__} at {k:g}{offset:+g}"
                if len(found) != 1:
                    failed.append(f"{what}: {len(found)} fragile decisions at unit 0, expected 1")
                    continue
                _, _, flip, _, _ = found[0]
                delta = np.zeros((1, 5), dtype=np.int64)
                delta[0, 0] = flip[2]
                w1, w2 = lin1.weight.detach().numpy(), lin2.weight.detach().numpy()
                s = slope(z)
                want = w1.T @ (w2[0] * s)
                # the side across the kink from z (at the kink itself, from PyTorch's side of it)
                if offset != 0.0:
                    side = 1 if offset < 0 else -1
                else:
                    side = 1 if abs(slope(np.array([k]))[0] - slope(np.array([k - 1e-9]))[0]) < 1e-6 else -1
                s_other = s.copy()
                s_other[0] = slope(np.array([k + side * 1e-12]))[0]
                want_flipped = w1.T @ (w2[0] * s_other)
                got = []
                for flips in ({}, {1: ("kink", torch.from_numpy(delta))}):
                    xx = x.clone().requires_grad_(True)
                    out = net.forward(xx, flips=flips)
                    got.append(torch.autograd.grad(out[0, 0], xx)[0][0].numpy())
                xx = x.clone().requires_grad_(True)
                torch_grad = torch.autograd.grad(model(xx)[0, 0], xx)[0][0].numpy()
                before = len(failed)
                for name, a, b in (("unflipped", got[0], want), ("PyTorch", torch_grad, want),
                                   ("flipped", got[1], want_flipped)):
                    if np.abs(a - b).max() > 1e-6 * max(np.abs(b).max(), 1e-12):
                        failed.append(f"{what}: {name} gradient {a} != {b}")
                if flip[2] != side:
                    failed.append(f"{what}: flip direction {flip[2]}, expected {side}")
                print(f"{what:32s} fragile, flipped to the piece {'above' if flip[2] > 0 else 'below'}: "
                      f"{'gradients match' if len(failed) == before else 'FAIL'}")


def positive_graph():
    """A graph with every node kind |J| passes through, weights made nonnegative."""
    nodes = [make_graph_model.conv("c1", "input", 4, 3), make_graph_model.unary("bn", "batchnorm", "c1"),
             make_graph_model.conv("a", "bn", 3, 3), make_graph_model.conv("b", "bn", 4, 1),
             {"id": "sum", "type": "add", "inputs": ["b", "bn", "bn"]},
             {"id": "cat", "type": "concat", "inputs": ["sum", "a"]},
             make_graph_model.unary("pool", "maxpool2d", "cat", kernel=2),
             make_graph_model.conv("g1", "pool", 7, 4, stride=4, padding=0),
             make_graph_model.unary("gate", "sigmoid", "g1"),
             {"id": "scaled", "type": "mul", "inputs": ["pool", "gate"]},
             make_graph_model.unary("flat", "flatten", "scaled"),
             {"id": "fc", "type": "dense", "inputs": ["flat"], "out_features": 3}]
    model = torch_model.GraphNet({"input": [8, 8, 2], "output": "fc", "nodes": nodes}).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.fill_(-0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model


def check_abs_backward(failed):
    torch.manual_seed(4)
    model = positive_graph()
    x = torch.rand(3, 2, 8, 8, dtype=torch.float64) + 0.1
    net = decisions.DecisionNet(model)
    seeds = {"pool": None, "fc": None, "gate": None}
    values = {}
    with torch.no_grad():
        model(x, keep=values)
    terms = 0
    xx = x.clone().requires_grad_(True)
    keep = {}
    model(xx, keep=keep)
    for key in seeds:
        src = net.inputs[key][0]
        seeds[key] = torch.rand_like(values[src])
        terms = terms + (keep[src] * seeds[key]).sum()
    want = torch.autograd.grad(terms, xx)[0]
    got = net.abs_backward(x, torch.zeros_like(x), seeds)
    rel = float((got - want).abs().max() / want.abs().max())
    print(f"|J|^T seeds on a nonnegative graph against autograd: {rel:.1e} of the largest")
    if rel > 1e-6:
        failed.append(f"abs_backward on a nonnegative graph differs from autograd by {rel:.2e}")
    # Avgpools in a chain, the same way.
    chain = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.AvgPool2d(2), nn.Conv2d(3, 4, 3),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        for p in chain.parameters():
            p.abs_()
    net = decisions.DecisionNet(chain)
    seeds = {4: torch.rand(3, 4, 1, 1, dtype=torch.float64), 5: torch.rand(3, 4, dtype=torch.float64)}
    xx = x.clone().requires_grad_(True)
    a3 = chain[:4](xx)
    want = torch.autograd.grad((a3 * seeds[4]).sum() + (chain[:5](xx) * seeds[5]).sum(), xx)[0]
    got = net.abs_backward(x, torch.zeros_like(x), seeds)
    rel = float((got - want).abs().max() / want.abs().max())
    print(f"|J|^T seeds through average pools against autograd: {rel:.1e} of the largest")
    if rel > 1e-6:
        failed.append(f"abs_backward through average pools differs from autograd by {rel:.2e}")


def check_scales(failed):
    torch.manual_seed(6)
    g = torch.Generator().manual_seed(6)
    shape = torch.linspace(0, 1, 28, dtype=torch.float64)
    image = (torch.sin(7 * shape).view(-1, 1) * torch.cos(5 * shape).view(1, -1)).abs().view(1, 1, 28, 28)
    pts = torch.linspace(0.02, 1, 24, dtype=torch.float64).view(-1, 1, 1, 1) * image
    error = decisions.path_error(torch.zeros_like(image), image).expand_as(pts)
    models = []
    for arch in ("resnet", "mixed"):
        m = torch_model.GraphNet(make_graph_model.ARCHS[arch]())
        make_graph_model.randomize_statistics(m, g)
        models.append((arch, m.eval()))
    chain = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.GELU(), nn.AvgPool2d(2), nn.Conv2d(4, 6, 3),
                          nn.Tanh(), nn.AvgPool2d(3, stride=2, padding=1), nn.Conv2d(6, 5, 3), nn.SiLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(5, 3)).eval()
    models.append(("avgpool chain", chain))
    for name, m32 in models:
        m64 = copy.deepcopy(m32).double()
        net = decisions.DecisionNet(m64)
        strays = decisions.calibration(net, m32, pts, error)
        print(f"{name}: PyTorch float32 strays at most {strays:.2f} rounding scales from float64")
        if not strays <= decisions.MARGIN / 2:
            failed.append(f"{name}: float32 strays {strays:.2f} rounding scales (more than {decisions.MARGIN / 2:g})")


def main():
    failed = []
    check_kinks(failed)
    check_abs_backward(failed)
    check_scales(failed)
    for f in failed:
        print(f"FAIL: {f}")
    if failed:
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
