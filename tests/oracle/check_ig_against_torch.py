#!/usr/bin/python3
"""Independent oracle: `igscope attribute` against IG computed in PyTorch.

For a Fashion-MNIST model file (28x28x1 input, 10 logits; a random
fashion_cnn_v1 from `igscope init` unless --model is given, which may also be
a graph model: torch_model.GraphNet runs it, decisions.py follows its nodes),
Fashion-MNIST test images read here from the Debian package's IDX files,
and several baselines, quadratures and targets, PyTorch computes
IG = (x - x') * sum_k w_k dF/dx(x' + alpha_k (x - x')) with the quadrature
nodes and weights computed here (numpy's Gauss-Legendre, the Riemann rules
from their definitions), F being a class's logit or softmax probability.
Deterministic baselines are rebuilt here; random ones (igscope's own seeded
generator) are taken from igscope's JSON.

The rule, the same on every CPU (decisions.py): igscope is compared with
PyTorch in float64, element by element, within 1e-4 of max |attribution| plus
the allowance of the decisions that float32 rounding can flip (a ReLU whose
pre-activation, or a max-pool pair whose difference, is within the float64
pass's error bound of 0; each one recomputed in float64 with the decision
flipped). The gap gets 1e-4 of |F(x) - F(x')| plus the same allowance for
the attributions' sum, plus igscope's own differences in F(x) and F(x')
(each checked on its own, within 1e-4 of |F|), which the gap
sum IG - (F(x) - F(x')) carries over: a few float32 ulps of F are more than
1e-4 of a small F(x) - F(x') (a random graph model's test:3 gave 2.8e-3 with
|F| 0.38 and F off by 1.8e-7). PyTorch's own float32 result is printed for
comparison, not used as a bound: it rounds in yet another order.
Also checks the plain gradient and gradient x input, that a PNG input equals
the same test image, that the heatmap is a PNG of the documented size, and
that bad parameters give clear errors.
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from idx import read_idx  # noqa: E402
import torch_model  # noqa: E402
from quadrature_rules import rule  # noqa: E402
import decisions  # noqa: E402

TOLERANCE = 1e-4
DATA_DIR = os.environ.get("IGSCOPE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def test_images():
    return read_idx(os.path.join(DATA_DIR, "t10k-images-idx3-ubyte.gz"))


def blur(img, sigma):
    """Separable Gaussian blur, radius ceil(4 sigma), borders reflected (d c b a | a b c d)."""
    r = max(1, math.ceil(4 * sigma))
    j = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-j * j / (2 * sigma * sigma))
    k /= k.sum()
    p = np.pad(img, r, mode="symmetric")
    rows = np.stack([np.convolve(row, k, mode="valid") for row in p])
    return np.stack([np.convolve(col, k, mode="valid") for col in rows.T]).T


def baseline_for(spec, x, ours):
    if spec == "black":
        return np.zeros_like(x)
    if spec == "white":
        return np.ones_like(x)
    if spec.startswith("constant:"):
        return np.full_like(x, float(spec.split(":")[1]))
    if spec.startswith("blur:"):
        return blur(x, float(spec.split(":")[1]))
    if spec == "maxdist":
        return np.where(1.0 - x >= x, 1.0, 0.0)
    # Random kinds: igscope's own seeded draws, as its JSON reports them.
    return np.array(ours["baseline_image"], dtype=np.float64)


def target_fn(model, output, target):
    def f(batch_nchw):
        logits = model(batch_nchw)
        if output == "probability":
            return torch.softmax(logits, dim=1)[:, target]
        return logits[:, target]
    return f


def ig_allowance(model64, model32, x, b, quadrature, steps, output, target, scale):
    """decisions.allowance for IG (per path point k, w_k (x - x') dF/dx(k)), and
    how many rounding scales PyTorch's own float32 pass strays (decisions.calibration)."""
    if not decisions.has_decisions(model64):
        return 0.0, 0.0, 0, 0.0  # a smooth model: nothing for rounding to flip, nothing to calibrate
    alphas, weights = rule(quadrature, steps)
    xt, bt = torch.from_numpy(x).view(1, 1, 28, 28), torch.from_numpy(b).view(1, 1, 28, 28)
    pts = bt + torch.from_numpy(alphas).view(-1, 1, 1, 1) * (xt - bt)
    net = decisions.DecisionNet(model64)
    objective = target_fn(lambda out: out, output, target)

    def quantity(forward, rows, p):
        p = p.clone().requires_grad_(True)
        f = target_fn(forward, output, target)(p)
        g = torch.autograd.grad(f.sum(), p)[0][:, 0]
        return (torch.from_numpy(weights[rows]).view(-1, 1, 1) * (xt - bt)[0] * g).detach().numpy()

    error = decisions.path_error(bt, xt - bt).expand_as(pts)
    found = decisions.allowance(net, pts, error, (xt - bt).abs().expand_as(pts), weights, objective, quantity, scale)
    return found + (decisions.calibration(net, model32, pts, error),)


def torch_ig(model, x, b, quadrature, steps, output, target, dtype=torch.float64):
    alphas, weights = rule(quadrature, steps)
    xt = torch.from_numpy(x).to(dtype)
    bt = torch.from_numpy(b).to(dtype)
    a = torch.from_numpy(alphas).to(dtype).view(-1, 1, 1)
    pts = (bt + a * (xt - bt)).unsqueeze(1).requires_grad_(True)  # [n, 1, 28, 28] (NCHW, C = 1)
    f = target_fn(model, output, target)
    f(pts).sum().backward()
    grads = pts.grad[:, 0].double().numpy()
    ig = (x - b) * np.tensordot(weights, grads, axes=1)
    with torch.no_grad():
        fx = f(xt.view(1, 1, 28, 28)).item()
        fb = f(bt.view(1, 1, 28, 28)).item()
    return ig, fx, fb


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def write_png_gray(path, img_u8):
    """A minimal 8-bit grey-scale PNG writer (no imaging library needed)."""
    h, w = img_u8.shape
    raw = b"".join(b"\x00" + img_u8[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


CASES = [
    # (test index, baseline, quadrature, steps, output, target or None for the predicted class)
    (0, "black", "gausslegendre", 32, "logit", None),
    (1, "white", "riemann_trapezoid", 20, "probability", 3),
    (2, "blur:1.5", "riemann_middle", 24, "logit", None),
    (3, "constant:0.3", "riemann_left", 16, "logit", 5),
    (4, "maxdist", "riemann_right", 16, "probability", None),
    (5, "uniform@3", "gausslegendre", 16, "logit", 7),
    (6, "gaussian:0.2@4", "gausslegendre", 24, "probability", None),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--model", help="model file (default: a random fashion_cnn_v1 from igscope init)")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    model_path = args.model or os.path.join(args.workdir, "fashion_cnn_v1_ig_oracle.safetensors")
    if not args.model:
        subprocess.run([args.igscope, "init", "--arch", "fashion_cnn_v1", "--seed", str(args.seed),
                        "--out", model_path], check=True, stdout=subprocess.DEVNULL)
    model32, arch = torch_model.load_model(model_path)
    if list(arch["input"]) != [28, 28, 1]:
        sys.exit(f"{model_path}: input {arch['input']}, but this oracle runs Fashion-MNIST images (28x28x1)")
    model, _ = torch_model.load_model(model_path)
    model = model.double()
    images = test_images()
    failed = []

    def check(cond, what):
        if not cond:
            failed.append(what)
            print(f"FAIL: {what}")

    header = ("input", "baseline", "quadrature", "n", "output", "vs f64", "excess", "allow", "fragile", "strays", "f32-f64",
              "|dF(x)|", "|dF(x')|", "|dgap|", "gap exc")
    print("{:8s} {:16s} {:18s} {:>4s} {:11s} {:>9s} {:>9s} {:>9s} {:>7s} {:>6s} {:>9s} {:>9s} {:>9s} {:>9s} {:>9s}".format(*header))
    print("(vs f64: max |igscope - PyTorch float64| / max |attribution|; excess: the same less the allowance, <= 1e-4;\n"
          " allow: largest allowance / max |attribution|; fragile: decisions float32 may flip; strays: PyTorch float32's\n"
          " largest pre-activation error in rounding scales, <= 8; f32-f64: PyTorch float32\n"
          " against float64; gap exc: (|dgap| - sum allowance - |dF(x)| - |dF(x')|) / |F(x) - F(x')|, <= 1e-4)")
    for idx, spec, quad, steps, output, target in CASES:
        out_json = os.path.join(args.workdir, f"ig_{idx}.json")
        cmd = [args.igscope, "attribute", "--model", model_path, "--input", f"test:{idx}", "--method", "ig",
               "--baseline", spec, "--quadrature", quad, "--steps", str(steps), "--output", output,
               "--json", out_json, "--batch", "7"]
        if target is not None:
            cmd += ["--target", str(target)]
        r = run(cmd)
        if r.returncode != 0:
            check(False, f"igscope attribute {' '.join(cmd[2:])} exited {r.returncode}: {r.stderr.strip()}")
            continue
        with open(out_json) as f:
            ours = json.load(f)
        x = images[idx].astype(np.float64) / 255.0
        b = baseline_for(spec, x, ours)
        our_b = np.array(ours["baseline_image"], dtype=np.float64)
        check(np.abs(our_b - b).max() <= 1e-6, f"test:{idx} baseline {spec}: igscope's baseline image differs")
        with torch.no_grad():
            pred = int(model(torch.from_numpy(x).view(1, 1, 28, 28)).argmax())
        t = pred if target is None else target
        check(ours["target"] == t, f"test:{idx}: target {ours['target']} != {t}")
        ig, fx, fb = torch_ig(model, x, b, quad, steps, output, t)
        ig32, _, _ = torch_ig(model32, x, b, quad, steps, output, t, torch.float32)
        scale = np.abs(ig).max()
        allow, allow_sum, fragile, strays = ig_allowance(model, model32, x, b, quad, steps, output, t, scale)
        attr = np.array(ours["attributions"], dtype=np.float64)
        diff = np.abs(attr - ig)
        rel = diff.max() / max(scale, 1e-30)
        excess = (diff - allow).max() / max(scale, 1e-30)
        spread = np.abs(ig32 - ig).max() / max(scale, 1e-30)
        gap = ig.sum() - (fx - fb)
        dfx, dfb, dgap = abs(ours["f_input"] - fx), abs(ours["f_baseline"] - fb), abs(ours["gap"] - gap)
        gap_tol = TOLERANCE * max(abs(fx - fb), 1e-3)
        print(f"test:{idx:<3d} {spec:16s} {quad:18s} {steps:4d} {output:11s} {rel:9.1e} {excess:9.1e} "
              f"{np.max(allow) / scale:9.1e} {fragile:7d} {strays:6.2f} {spread:9.1e} {dfx:9.1e} {dfb:9.1e} {dgap:9.1e} "
              f"{(dgap - allow_sum - dfx - dfb) / max(abs(fx - fb), 1e-3):9.1e}")
        check(scale > 0, f"test:{idx}: PyTorch's IG is all zero")
        check(strays <= decisions.MARGIN / 2,
              f"test:{idx}: PyTorch's float32 pre-activations stray {strays:.1f} rounding scales from float64, "
              f"too close to the margin {decisions.MARGIN:g} of the decision rule")
        check(excess <= TOLERANCE,
              f"test:{idx} {spec} {quad}: against float64, max(|diff| - allowance) / max|attr| = {excess:.2e} "
              f"(max|diff| {rel:.2e}, {fragile} fragile decisions)")
        fscale = max(abs(fx), abs(fb), 1e-3)
        check(dfx <= TOLERANCE * fscale and dfb <= TOLERANCE * fscale, f"test:{idx}: F(x) or F(x') differs")
        check(dgap <= gap_tol + allow_sum + dfx + dfb,
              f"test:{idx}: the gap differs by {dgap:.2e} (allowed {gap_tol:.2e} + {allow_sum:.2e} for fragile decisions "
              f"+ {dfx + dfb:.2e} carried over from F(x) and F(x'))")
        check(len(ours["path"]) == len(rule(quad, steps)[0]), f"test:{idx}: path data has the wrong length")

    # Plain gradient and gradient x input (predicted class, logit).
    x = images[8].astype(np.float64) / 255.0
    xt = torch.from_numpy(x).view(1, 1, 28, 28).requires_grad_(True)
    logits = model(xt)
    t = int(logits.argmax())
    logits[0, t].backward()
    grad = xt.grad[0, 0].numpy()
    for method, want in (("gradient", grad), ("gradxinput", grad * x)):
        out_json = os.path.join(args.workdir, f"{method}.json")
        r = run([args.igscope, "attribute", "--model", model_path, "--input", "test:8", "--method", method,
                 "--json", out_json])
        check(r.returncode == 0, f"{method}: exited {r.returncode}: {r.stderr.strip()}")
        if r.returncode == 0:
            with open(out_json) as f:
                got = np.array(json.load(f)["attributions"], dtype=np.float64)
            rel = np.abs(got - want).max() / np.abs(want).max()
            print(f"test:8   {method:16s} max|diff|/max|attr| = {rel:.2e}")
            check(rel <= TOLERANCE, f"{method}: max|diff| / max|attr| = {rel:.2e}")

    # A PNG input is the same image as test:INDEX; the heatmap is a PNG of 28 * scale pixels.
    png_in = os.path.join(args.workdir, "test0.png")
    write_png_gray(png_in, images[0])
    heat = os.path.join(args.workdir, "heat.png")
    a_json, b_json = os.path.join(args.workdir, "png_in.json"), os.path.join(args.workdir, "idx_in.json")
    common = ["--model", model_path, "--steps", "8", "--target", "2"]
    r1 = run([args.igscope, "attribute", *common, "--input", png_in, "--json", a_json, "--png", heat,
              "--scale", "5", "--overlay", "0.7"])
    r2 = run([args.igscope, "attribute", *common, "--input", "test:0", "--json", b_json])
    check(r1.returncode == 0 and r2.returncode == 0, f"PNG input: {r1.stderr.strip()} {r2.stderr.strip()}")
    if r1.returncode == 0 and r2.returncode == 0:
        with open(a_json) as f, open(b_json) as g:
            check(json.load(f)["attributions"] == json.load(g)["attributions"], "PNG input differs from test:0")
        check(png_size(heat) == (140, 140), f"heatmap size {png_size(heat)} != (140, 140)")

    # Bad parameters: exit status 1 and a message that says what is wrong.
    small = os.path.join(args.workdir, "small.png")
    write_png_gray(small, np.zeros((14, 14), dtype=np.uint8))
    base = [args.igscope, "attribute", "--model", model_path, "--input", "test:0"]
    for extra, message in (
        (["--steps", "0"], "number of steps must be between 1 and 16384, got 0"),
        (["--baseline", "gaussian:-0.1"], "sigma must be >= 0"),
        (["--method", "smoothgrad", "--sigma", "-1"], "noise sigma must be a finite number >= 0"),
        (["--target", "10"], "target class 10 is out of range"),
        (["--baseline", f"image:{small}"], "is 14x14 pixels but the model takes 28x28"),
        (["--baseline", "sparkles"], "unknown kind 'sparkles'"),
        (["--adaptive", "-0.5"], "tolerance must be a finite number > 0"),
        (["--method", "gradient", "--adaptive", "0.01"], "--adaptive applies to the path methods"),
    ):
        r = run(base + extra)
        ok = r.returncode == 1 and message in r.stderr
        print(f"error    {' '.join(extra):40s} -> {r.stderr.strip()}")
        check(ok, f"{' '.join(extra)}: expected exit 1 and '{message}', got {r.returncode}: {r.stderr.strip()}")
    r = run([args.igscope, "attribute", "--model", model_path, "--input", "test:10000"])
    check(r.returncode == 1 and "the test set has 10000 images" in r.stderr, f"test:10000: {r.stderr.strip()}")

    if failed:
        print(f"{len(failed)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
