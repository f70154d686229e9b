#!/usr/bin/python3
"""Independent oracle: `igscope conductance` against conductance computed in PyTorch.

On a Fashion-MNIST CNN model file (a random fashion_cnn_smelu from `igscope
init` unless --model is given), for test images read here from the Debian
package's IDX files, PyTorch's autograd computes, at the quadrature nodes
alpha_k with weights w_k computed here (numpy's Gauss-Legendre, the Riemann
rules from their definitions), on the straight path from the baseline x' to x:

  neuron conductance of unit j:  (x - x') * sum_k w_k dF/dy_j(k) * dy_j/dx(k)
  layer conductance of unit j:   sum_k w_k dF/dy_j(k) * (J_y(k) (x - x'))_j

where y is the output of the chosen layer of an nn.Sequential built from the
file (tests/oracle/torch_model.py) and the Jacobian-vector product J_y v is
taken with the double-backward trick (the gradient, with respect to u, of
<J^T u, v>). Checks, per case: |difference| <= 1e-4 of max |value| against
PyTorch in float64, element by element, plus the allowance of the ReLU and
max-pool decisions that float32 rounding can flip (decisions.py: the rule that
gives the same verdict on every CPU); F(x), F(x'), the sum of the layer's
conductances against F(x) - F(x') up to the same quadrature's IG gap, and
that bad parameters give clear errors.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import idx  # noqa: E402
import torch_model  # noqa: E402
from quadrature_rules import rule  # noqa: E402
import decisions  # noqa: E402

TOLERANCE = 1e-4


def unit_index(y, flat):
    """igscope's flat unit index (NHWC order per sample) as an index into PyTorch's NCHW output."""
    if y.dim() == 4:
        _, c, h, w = y.shape
        hh, rest = divmod(flat, w * c)
        ww, cc = divmod(rest, c)
        return (slice(None), cc, hh, ww)
    return (slice(None), flat)


def torch_conductance(model, x, b, layer, quadrature, steps, output, target, unit, dtype):
    """Per-unit layer conductance (NHWC order, flattened), neuron conductance of `unit` (or None), F(x), F(x'), IG sum."""
    alphas, weights = rule(quadrature, steps)
    xt = torch.from_numpy(x).to(dtype).view(1, 1, 28, 28)
    bt = torch.from_numpy(b).to(dtype).view(1, 1, 28, 28)
    a = torch.from_numpy(alphas).to(dtype).view(-1, 1, 1, 1)
    wt = torch.from_numpy(weights).to(dtype)
    pts = (bt + a * (xt - bt)).requires_grad_(True)
    head, tail = model[: layer + 1], model[layer + 1 :]
    y = head(pts)
    out = tail(y) if len(tail) else y
    f = torch.softmax(out, dim=1)[:, target] if output == "probability" else out[:, target]
    g = torch.autograd.grad(f.sum(), y, retain_graph=True)[0]
    # J_y (x - x') by double backward: d/du <J^T u, v> = J v.
    v = (xt - bt).expand_as(pts)
    u = torch.zeros_like(y, requires_grad=True)
    vjp = torch.autograd.grad(y, pts, grad_outputs=u, create_graph=True)[0]
    jv = torch.autograd.grad(vjp, u, grad_outputs=v, retain_graph=True)[0]
    per_unit = (wt.view(-1, *[1] * (y.dim() - 1)) * g * jv).sum(0)
    if per_unit.dim() == 3:
        per_unit = per_unit.permute(1, 2, 0)  # C, H, W -> H, W, C
    ig_sum = float(((xt - bt) * torch.autograd.grad((wt * f).sum(), pts, retain_graph=True)[0].sum(0, keepdim=True)).sum())
    neuron = None
    if unit is not None:
        sel = unit_index(y, unit)
        coeff = (wt * g[sel]).detach()
        gx = torch.autograd.grad((coeff * y[sel]).sum(), pts)[0]
        neuron = ((xt - bt) * gx.sum(0, keepdim=True))[0, 0].detach().double().numpy().reshape(-1)
    with torch.no_grad():
        both = model(torch.cat([xt, bt]))
        fb = torch.softmax(both, dim=1)[:, target] if output == "probability" else both[:, target]
    return per_unit.detach().double().numpy().reshape(-1), neuron, float(fb[0]), float(fb[1]), ig_sum


def conductance_allowance(model64, x, b, layer, quadrature, steps, output, target, unit, scale):
    """decisions.allowance for conductance: per path point k, the layer's
    w_k dF/dy(k) * (J_y(k) (x - x')) per unit (NHWC order), or, for a neuron,
    w_k dF/dy_j(k) * (x - x') dy_j/dx(k)."""
    alphas, weights = rule(quadrature, steps)
    xt, bt = torch.from_numpy(x).view(1, 1, 28, 28), torch.from_numpy(b).view(1, 1, 28, 28)
    pts = bt + torch.from_numpy(alphas).view(-1, 1, 1, 1) * (xt - bt)
    net = decisions.DecisionNet(model64)

    def quantity(forward, rows, p):
        p = p.clone().requires_grad_(True)
        out, y = forward(p, keep=layer)
        f = torch.softmax(out, dim=1)[:, target] if output == "probability" else out[:, target]
        g = torch.autograd.grad(f.sum(), y, retain_graph=True)[0]
        w = torch.from_numpy(weights[rows])
        if unit is None:
            u = torch.zeros_like(y, requires_grad=True)
            vjp = torch.autograd.grad(y, p, grad_outputs=u, create_graph=True)[0]
            jv = torch.autograd.grad(vjp, u, grad_outputs=(xt - bt).expand_as(p))[0]
            per = w.view(-1, *[1] * (y.dim() - 1)) * g * jv
            if per.dim() == 4:
                per = per.permute(0, 2, 3, 1)
            return per.reshape(len(rows), -1).detach().numpy()
        sel = unit_index(y, unit)
        gx = torch.autograd.grad((w * g[sel].detach() * y[sel]).sum(), p)[0]
        return ((xt - bt) * gx)[:, 0].reshape(len(rows), -1).detach().numpy()

    def objective(out):
        return torch.softmax(out, dim=1)[:, target] if output == "probability" else out[:, target]

    error = decisions.path_error(bt, xt - bt).expand_as(pts)
    # A layer's conductances are no input map, so the bulk bound does not apply to them: recompute every flip.
    return decisions.allowance(net, pts, error, (xt - bt).abs().expand_as(pts), weights, objective, quantity, scale,
                               exact=decisions.EXACT if unit is not None else 1 << 30)


# (test index, layer, unit, baseline, quadrature, steps, output, target or None). unit None: layer
# conductance; "top": neuron conductance of the unit with the largest |layer conductance| (from a
# first igscope run), named by its coordinates.
CASES = [
    (0, 1, "top", "black", "gausslegendre", 32, "logit", None),
    (1, 5, "top", "black", "riemann_trapezoid", 20, "probability", 3),
    (2, 11, "top", "blur:1.5", "riemann_middle", 24, "logit", None),
    (3, 7, None, "uniform@3", "gausslegendre", 16, "logit", 5),
    (4, 2, None, "black", "gausslegendre", 24, "logit", None),
    (5, 11, None, "constant:0.3", "riemann_left", 16, "probability", None),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--model", help="model file (default: a random fashion_cnn_smelu from igscope init)")
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    model_path = args.model or os.path.join(args.workdir, "fashion_cnn_smelu_conductance_oracle.safetensors")
    if not args.model:
        subprocess.run([args.igscope, "init", "--arch", "fashion_cnn_smelu", "--seed", str(args.seed),
                        "--out", model_path], check=True, stdout=subprocess.DEVNULL)
    model32, _ = torch_model.load_model(model_path)
    model64, _ = torch_model.load_model(model_path)
    model64 = model64.double()
    data_dir = os.environ.get("IGSCOPE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    images = idx.read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"))
    failed = []

    def check(cond, what):
        if not cond:
            failed.append(what)
            print(f"FAIL: {what}")

    print(f"{'input':8s} {'layer':>5s} {'unit':9s} {'baseline':13s} {'quadrature':18s} {'n':>3s} "
          f"{'vs f64':>9s} {'excess':>9s} {'allow':>9s} {'fragile':>7s} {'f32-f64':>9s} {'sum':>11s} {'F(x)-F(x`)':>11s} {'IG sum':>11s}")
    for index, layer, unit, spec, quad, steps, output, target in CASES:
        out_json = os.path.join(args.workdir, f"conductance_{index}.json")
        cmd = [args.igscope, "conductance", "--model", model_path, "--input", f"test:{index}", "--layer", str(layer),
               "--baseline", spec, "--quadrature", quad, "--steps", str(steps), "--output", output,
               "--json", out_json, "--batch", "7"]
        if target is not None:
            cmd += ["--target", str(target)]
        if unit is not None:
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                check(False, f"igscope {' '.join(cmd[1:])} exited {r.returncode}: {r.stderr.strip()}")
                continue
            with open(out_json) as f:
                first = json.load(f)
            top = int(np.argmax(np.abs(np.array(first["units"]))))
            shape = first["unit_shape"]
            unit = ",".join(str(c) for c in np.unravel_index(top, shape)) if len(shape) == 3 else str(top)
            cmd += ["--unit", unit]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            check(False, f"igscope {' '.join(cmd[1:])} exited {r.returncode}: {r.stderr.strip()}")
            continue
        with open(out_json) as f:
            ours = json.load(f)
        x = images[index].astype(np.float64) / 255.0
        b = np.array(ours["baseline_images"][0], dtype=np.float64).reshape(28, 28)
        if spec == "black":
            check(np.abs(b).max() == 0.0, f"test:{index}: the black baseline is not zero")
        if spec.startswith("constant:"):
            check(np.abs(b - float(spec.split(":")[1])).max() <= 1e-7, f"test:{index}: the constant baseline differs")
        with torch.no_grad():
            pred = int(model64(torch.from_numpy(x).view(1, 1, 28, 28)).argmax())
        t = pred if target is None else target
        check(ours["target"] == t, f"test:{index}: target {ours['target']} != {t}")
        flat = None
        if unit is not None:
            flat = ours["unit"]
        res64 = torch_conductance(model64, x, b, layer, quad, steps, output, t, flat, torch.float64)
        want_scale = np.abs(res64[0] if unit is None else res64[1]).max()
        allow, allow_sum, fragile = conductance_allowance(model64, x, b, layer, quad, steps, output, t, flat,
                                                          want_scale)
        res32 = torch_conductance(model32, x, b, layer, quad, steps, output, t, flat, torch.float32)
        per_unit, neuron, fx, fb, ig_sum = res64
        if unit is None:
            got, want, want32 = np.array(ours["units"]), per_unit, res32[0]
            total = float(ours["sum"])
            check(abs(total - per_unit.sum()) <= TOLERANCE * max(abs(fx - fb), 1e-3) + allow_sum,
                  f"test:{index} layer {layer}: the sum of conductances differs from PyTorch's")
            # channels: the per-unit values summed over positions
            shape = ours["unit_shape"]
            channels = per_unit.reshape(-1, shape[-1]).sum(0) if len(shape) == 3 else per_unit
            channel_allow = (np.reshape(allow, (-1, shape[-1])).sum(0) if len(shape) == 3 else allow) \
                if np.ndim(allow) else 0.0
            crel = (np.abs(np.array(ours["channels"]) - channels) - channel_allow).max() / \
                max(np.abs(channels).max(), 1e-30)
            check(crel <= TOLERANCE, f"test:{index} layer {layer}: channels differ by {crel:.2e}")
        else:
            got, want, want32 = np.array(ours["attributions"]), neuron, res32[1]
            total = float(ours["conductance"])
            check(abs(total - want.sum()) <= TOLERANCE * max(np.abs(want).sum(), 1e-6) + allow_sum,
                  f"test:{index} unit {unit}: conductance {total} != PyTorch {want.sum()}")
            check(abs(want.sum() - per_unit[flat]) <= 1e-9 * max(abs(per_unit[flat]), 1.0) + 1e-10,
                  f"test:{index} unit {unit}: PyTorch's neuron conductance does not sum to its layer conductance")
        scale = np.abs(want).max()
        rel = np.abs(got - want).max() / max(scale, 1e-30)
        excess = (np.abs(got - want) - allow).max() / max(scale, 1e-30)
        spread = np.abs(want32 - want).max() / max(scale, 1e-30)
        print(f"test:{index:<3d} {layer:5d} {str(unit):9s} {spec:13s} {quad:18s} {steps:3d} {rel:9.1e} {excess:9.1e} "
              f"{np.max(allow) / scale:9.1e} {fragile:7d} {spread:9.1e} "
              f"{total:11.5g} {fx - fb:11.5g} {ig_sum:11.5g}")
        check(scale > 0, f"test:{index}: PyTorch's conductance is all zero")
        check(excess <= TOLERANCE,
              f"test:{index} layer {layer} unit {unit}: max|diff| / max|value| = {rel:.2e} "
              f"less the allowance of {fragile} fragile decisions: {excess:.2e}")
        fscale = max(abs(fx), abs(fb), 1e-3)
        check(abs(ours["f_input"] - fx) <= TOLERANCE * fscale and abs(ours["f_baseline"] - fb) <= TOLERANCE * fscale,
              f"test:{index}: F(x) or F(x') differs")
        if unit is None:
            # completeness at the layer: the conductances sum to the IG sum of the same quadrature
            check(abs(per_unit.sum() - ig_sum) <= 1e-9 * max(abs(ig_sum), 1.0),
                  f"test:{index}: PyTorch's layer conductances do not sum to its IG sum")
            check(abs(ours["gap"] - (ig_sum - (fx - fb))) <= TOLERANCE * max(abs(fx - fb), 1e-3) + allow_sum,
                  f"test:{index}: the layer's gap {ours['gap']} != IG's gap {ig_sum - (fx - fb)}")

    base = [args.igscope, "conductance", "--model", model_path, "--input", "test:0"]
    for extra, message in (
        (["--layer", "99"], "node 99 is out of range: the model has 14 nodes"),
        (["--layer", "1", "--unit", "28,0,0"], "coordinate 0 is 28, past 27"),
        (["--layer", "11", "--unit", "128"], "index out of range (0..127)"),
        (["--layer", "1", "--steps", "0"], "number of steps must be between 1 and 16384"),
        (["--layer", "1", "--target", "10"], "target class 10 is out of range"),
    ):
        r = subprocess.run(base + extra, capture_output=True, text=True)
        print(f"error    {' '.join(extra):32s} -> {r.stderr.strip()}")
        check(r.returncode == 1 and message in r.stderr,
              f"{' '.join(extra)}: expected exit 1 and '{message}', got {r.returncode}: {r.stderr.strip()}")

    if failed:
        print(f"{len(failed)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
