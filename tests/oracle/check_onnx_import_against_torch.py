#!/usr/bin/python3
"""`igscope import` against the PyTorch modules the ONNX test set was exported from.

For every numeric entry of the ONNX test set (onnx_models.py: resnet18,
mobilenet_v2, densenet121, efficientnet_b0 and googlenet at each --sizes,
keras_style and small_mixed at 28x28, opsets 13 and 17; the refusal models
are skipped), built into WORKDIR/set unless --set names a built one:

a. import: `igscope import FILE --out M.safetensors` with the entry's
   --input-range, --mean and --std (the normalisation is not in the ONNX
   file; the importer puts it in front as the "preprocess" affine node,
   which must come first);
b. conversion, in float64: the imported file read back by torch_model.py on
   its own (GraphNet: a module at every node id, load_state_dict strict)
   against onnx_models.model_for_entry(entry) (the exported module with its
   normalisation; raw pixels in [0, 1]), both in float64, on smooth images
   quantised to 8 bits: the logits and the input gradient of a chosen logit
   per image, within CONVERSION_TOLERANCE = 2e-5 of the largest magnitude of
   each. They are not equal: the export folded the batch norms into the
   convolutions in float32 (each folded weight and bias rounded once).
   Measured: logits within 3.1e-6 (googlenet at 64), gradients within 5e-7,
   except where that rounding flips a decision: mobilenet_v2 at 224 (7.9e-3:
   two ReLU6 inputs at 2.8e-6 and 8.5e-6 from the kink at 0) and
   densenet121 at 224 (4.8e-4: one ReLU input at 1.5e-6); with the
   reference's decisions forced there, both agree within 3.4e-7. So the
   gradient gets the decision allowance of (c) as well (float32 rounding's
   margins contain the folding's, which rounds each weight once). Import
   errors are far larger (tried: the first channel's mean 0.001 off, a
   quarter of a grey level, moves the logits by 9e-4 to 8e-2; the input's
   channels swapped, by 0.6);
c. igscope (dump_model_outputs, each backend) against the PyTorch module in
   float64 (model_for_entry), on the same images and logits: logits within
   1e-4 of the largest |logit|; the input gradient within 1e-4 of max
   |gradient| plus, element by element, the decision allowance
   (decisions.py on the GraphNet of the imported file: the ReLU, kinked
   activation and max-pool decisions that float32 rounding can flip at this
   input, each recomputed in float64 with the decision flipped: the
   CPU-independent rule of check_ig_against_torch.py at a single point,
   path point = the image, weight 1, |x - x'| = 1). Printed: the error, the
   largest allowance, the excess (error less allowance, <= 1e-4 to pass) and
   the excess beyond the recomputed flips alone, all relative to max
   |gradient|; the fragile decisions and how many of them were only bounded;
   how many rounding scales PyTorch's own float32 pass strays
   (decisions.calibration, <= MARGIN / 2 for the rule to hold);
d. a 32-step Gauss-Legendre IG of the first image's target logit from the
   black baseline: `igscope attribute` on the image as a PNG (8-bit, so the
   PNG and the raw input are the same pixels) against PyTorch's IG in
   float64 (model_for_entry) under check_ig_against_torch.py's rule: the
   attributions within 1e-4 of max |attribution| plus the allowance of the
   fragile decisions on the path, F(x) and F(x') within 1e-4 of |F|, the gap
   within 1e-4 of |F(x) - F(x')| plus the sum allowance plus igscope's
   differences in F(x) and F(x').

What the decision rule can say here: decisions.allowance recomputes the 256
flips with the largest bounds and bounds the others through |J| (|W| layer
after layer), which grows geometrically with the depth. The Fashion-MNIST
CNNs, resnet18 and efficientnet_b0 (no decisions at all: SiLU and sigmoid
only) get meaningful allowances. At 64x64 the gradients' fragile decisions
(18 to 218 over the two images) are all recomputed, and the allowance is
what those flips do, although googlenet's reaches 8x max |gradient| at one
pixel (117 flips on its first image, each moving the gradient by up to 7%
of its largest value). The IGs of mobilenet_v2, googlenet and
densenet121 have 2000 to 8700 fragile decisions on the path: their bounded
part is 1e15 to 1e54 of the largest attribution, so the rule passes them
whatever igscope computes, and only the printed excess beyond the
recomputed flips says something (on a correct import it is <= 0 for every
model: the 256 recomputed flips explain all of igscope's differences).

Cost, and what runs at each size (CI on 2 cores; torch on one thread):
* 28 and 64: every --backends backend (default reference,simd), --images
  images (default 2) for (b) and (c), and the IG (d);
* 224 (and any size above 64): (b) and (c) only, on --backends-224
  (default simd), one image, the gradient's fragile decisions all bounded
  (--exact-224, default 0: recomputing one costs 0.2 to 1 s at 224, and
  there are 210 to 1700 of them); there the gradient check is strict for
  efficientnet_b0 (no decisions) and passes the others on the |J| bound,
  whose logits are still checked to 1e-4. --ig-224 adds the IG at 224.
The opset 13 and 17 exports of a torchvision model import to the same
graph and weights (the importer's names aside): where two imported files
hash the same (architecture less its name, and every tensor), the second
reuses the first one's PyTorch side (reference values, allowances), and
says so; igscope still runs on each file.

Run time, measured on a 2-core machine with nothing else running (torch on
one thread, igscope on both cores): 8 min 54 s for the whole set: building
it 76 s, the 28x28 models 11 s, the 64x64 ones 330 s (densenet121 127 s,
resnet18 68 s, googlenet 62 s, mobilenet_v2 41 s, efficientnet_b0 33 s, both
opsets), the 224x224 ones 113 s. --sizes 64 leaves the 224 part out.

The script prints a line per model and check, a summary table, and exits
non-zero on any failure.
"""
import argparse
import hashlib
import json
import os
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import decisions  # noqa: E402
import onnx_models  # noqa: E402
import torch_model  # noqa: E402
from check_graphs_against_torch import smooth_images  # noqa: E402
from quadrature_rules import rule  # noqa: E402

TOLERANCE = 1e-4
CONVERSION_TOLERANCE = 2e-5
IG_STEPS = 32
IG_QUADRATURE = "gausslegendre"


# --------------------------------------------------------------------------
# Inputs

def test_images(seed, n, size, channels):
    """n smooth images (check_graphs_against_torch.smooth_images, each
    stretched to [0, 1]) quantised to 8 bits: float32 NHWC, pixel = u8 / 255
    in float32, as igscope reads a PNG."""
    rng = np.random.default_rng(seed)
    raw = smooth_images(rng, n, size, size, channels).astype(np.float64)
    lo = raw.reshape(n, -1).min(1).reshape(n, 1, 1, 1)
    hi = raw.reshape(n, -1).max(1).reshape(n, 1, 1, 1)
    u8 = np.clip(np.rint(255 * (raw - lo) / (hi - lo)), 0, 255).astype(np.uint8)
    return u8, u8.astype(np.float32) / np.float32(255)


def write_png(path, img_u8):
    """A minimal 8-bit PNG (grey for [H, W, 1], RGB for [H, W, 3])."""
    h, w, c = img_u8.shape
    color = {1: 0, 3: 2}[c]
    raw = b"".join(b"\x00" + img_u8[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def nchw(x_nhwc):
    return torch.from_numpy(np.ascontiguousarray(x_nhwc)).double().permute(0, 3, 1, 2).contiguous()


def layout(t):
    """[n, C, H, W] -> numpy [n, H, W, C], or [n, H, W] for one channel (the IG JSON's layout and
    decisions.allowance's)."""
    t = t.detach().permute(0, 2, 3, 1)
    if t.shape[3] == 1:
        t = t[..., 0]
    return t.double().numpy()


# --------------------------------------------------------------------------
# PyTorch side

def logits_and_grad(model, x, targets):
    """Logits [n, K] and d logit[target] / d x per image, NCHW float64."""
    xx = x.clone().requires_grad_(True)
    logits = model(xx)
    picked = logits.gather(1, torch.as_tensor(targets).view(-1, 1)).sum()
    grad = torch.autograd.grad(picked, xx)[0]
    return logits.detach().double().numpy(), grad.detach()


def gradient_allowance(net, model32, x, target, exact, details):
    """decisions.allowance for the input gradient of logit `target` at the one image x ([1, C, H, W]):
    path points = x, weight 1, |x - x'| = 1 (so that the bounds are those of the gradient itself)."""
    weights = np.ones(1)
    objective = lambda out: out[:, target]  # noqa: E731

    def quantity(forward, rows, p):
        p = p.clone().requires_grad_(True)
        g = torch.autograd.grad(forward(p)[:, target].sum(), p)[0]
        return layout(g)

    error = torch.zeros_like(x)
    allow, _, fragile = decisions.allowance(net, x, error, torch.ones_like(x), weights, objective, quantity, 1.0,
                                            exact=exact, chunk=16, details=details)
    return allow, fragile, decisions.calibration(net, model32, x, error)


def ig_points(x, b):
    alphas, weights = rule(IG_QUADRATURE, IG_STEPS)
    a = torch.from_numpy(alphas).view(-1, 1, 1, 1)
    return b + a * (x - b), weights


def torch_ig(model, x, b, target, chunk=16):
    """IG of logit `target` from b to x ([1, C, H, W] float64), F(x) and F(x')."""
    pts, weights = ig_points(x, b)
    total = torch.zeros_like(x[0])
    for start in range(0, len(pts), chunk):
        p = pts[start:start + chunk].clone().requires_grad_(True)
        g = torch.autograd.grad(model(p)[:, target].sum(), p)[0]
        total += (torch.from_numpy(weights[start:start + chunk]).view(-1, 1, 1, 1) * g).sum(0)
    ig = layout(((x - b)[0] * total).unsqueeze(0))[0]
    with torch.no_grad():
        fx, fb = float(model(x)[0, target]), float(model(b)[0, target])
    return ig, fx, fb


def ig_allowance(net, model32, x, b, target, details):
    """decisions.allowance for IG (per path point k, w_k (x - x') dF/dx(k)), as check_ig_against_torch."""
    pts, weights = ig_points(x, b)
    objective = lambda out: out[:, target]  # noqa: E731

    def quantity(forward, rows, p):
        p = p.clone().requires_grad_(True)
        g = torch.autograd.grad(forward(p)[:, target].sum(), p)[0]
        return layout(torch.from_numpy(weights[rows]).view(-1, 1, 1, 1) * (x - b) * g)

    error = decisions.path_error(b, x - b).expand_as(pts)
    allow, allow_sum, fragile = decisions.allowance(net, pts, error, (x - b).abs().expand_as(pts), weights,
                                                    objective, quantity, 1.0, details=details)
    return allow, allow_sum, fragile, decisions.calibration(net, model32, pts, error)


# --------------------------------------------------------------------------

class Checker:
    def __init__(self):
        self.failed = []
        self.rows = []

    def check(self, cond, what):
        if not cond:
            self.failed.append(what)
            print(f"  FAIL: {what}", flush=True)
        return cond


def run(cmd):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True)


def run_json(ck, cmd, out, what):
    """Runs cmd, which writes the JSON file out; its contents, or None after a failed check naming `what`."""
    r = run(cmd)
    if not ck.check(r.returncode == 0, f"{what} exited {r.returncode}: {r.stderr.strip()}"):
        return None
    with open(out) as f:
        return json.load(f)


def import_entry(args, entry, set_dir, out):
    cmd = [args.igscope, "import", os.path.join(set_dir, entry["file"]), "--out", out,
           "--input-range", entry["input_range"],
           "--mean", ",".join(repr(float(v)) for v in entry["mean"]),
           "--std", ",".join(repr(float(v)) for v in entry["std"])]
    return run(cmd)


def verdict(ok, excess_recomputed):
    if not ok:
        return "FAIL"
    if excess_recomputed > TOLERANCE:
        return "ok (on the bound of the flips not recomputed only)"
    return "ok"


def content_key(path):
    """A hash of an imported file's graph and tensors, its name left out (the opset 13 and 17
    exports of a torchvision model import to the same graph and weights)."""
    metadata, tensors = torch_model.read_safetensors(path)
    arch = json.loads(metadata["architecture"])
    arch.pop("name", None)
    h = hashlib.sha256(json.dumps(arch, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].numpy()
        h.update(f"{name} {t.dtype} {t.shape}".encode())
        h.update(np.ascontiguousarray(t).tobytes())
    return h.hexdigest()


def reference_module(entry, cache):
    key = (entry["model"], entry["seed"], entry["size"], entry["channels"], tuple(entry["mean"]), tuple(entry["std"]),
           entry["input_range"])
    if key not in cache:
        cache.clear()  # one at a time: the 224 ones are large
        cache[key] = onnx_models.model_for_entry(entry).double().eval()
    return key, cache[key]


def torch_side(args, entry, path, ref, big, with_ig):
    """Everything PyTorch computes for one imported file: the images and targets, the reference
    logits and gradients, the conversion errors, the decision allowances, and the reference IG."""
    size, channels = entry["size"], entry["channels"]
    n_images = 1 if big else args.images
    model64, _ = torch_model.load_model(path)
    model64 = model64.double()
    model32, _ = torch_model.load_model(path)
    pt = {"n": n_images}
    pt["u8"], pt["x_nhwc"] = test_images(entry["seed"] + size, n_images, size, channels)
    x = nchw(pt["x_nhwc"])
    with torch.no_grad():
        first = ref(x[:1])
    rng = np.random.default_rng(entry["seed"])
    pt["targets"] = [int(first.argmax())] + [int(t) for t in rng.integers(0, first.shape[1], size=n_images - 1)]
    want_logits, want_grad = logits_and_grad(ref, x, pt["targets"])
    pt["want_logits"], pt["want_grad"] = want_logits, layout(want_grad)

    # (b) conversion in float64, and the gradients' decision allowances.
    t1 = time.time()
    conv_logits, conv_grad = logits_and_grad(model64, x, pt["targets"])
    conv_grad = layout(conv_grad)
    net = decisions.DecisionNet(model64)
    exact = args.exact_224 if big else decisions.EXACT
    allowances, fragiles, strays, recomputed, bounded = [], [], [], [], []
    for i in range(n_images):
        details = {}
        allow, fragile, stray = gradient_allowance(net, model32, x[i:i + 1], pt["targets"][i], exact, details)
        allowances.append(np.broadcast_to(allow, pt["want_grad"].shape[1:]))
        recomputed.append(np.broadcast_to(details["recomputed"], pt["want_grad"].shape[1:]))
        bounded.append(details["n_bounded"])
        fragiles.append(fragile)
        strays.append(stray)
    pt["t_allow"] = time.time() - t1
    pt["gscale"] = [np.abs(pt["want_grad"][i]).max() for i in range(n_images)]
    pt["allowances"], pt["recomputed"] = allowances, recomputed
    pt["fragile"], pt["n_bounded"], pt["strays"] = sum(fragiles), sum(bounded), max(strays)
    pt["conv_l"] = np.abs(conv_logits - want_logits).max() / np.abs(want_logits).max()
    diffs = [np.abs(conv_grad[i] - pt["want_grad"][i]) for i in range(n_images)]
    pt["conv_g"] = max(d.max() / g for d, g in zip(diffs, pt["gscale"]))
    pt["conv_gx"] = max((d - a).max() / g for d, a, g in zip(diffs, allowances, pt["gscale"]))
    pt["allow_rel"] = max(a.max() / g for a, g in zip(allowances, pt["gscale"]))

    # (d) the reference IG of the first image, and its allowance.
    if with_ig:
        t2 = time.time()
        x0 = x[:1]
        b0 = torch.zeros_like(x0)
        target = pt["targets"][0]
        ig, fx, fb = torch_ig(ref, x0, b0, target)
        details = {}
        allow, allow_sum, fragile, stray = ig_allowance(net, model32, x0, b0, target, details)
        pt["ig"] = {"ig": ig, "fx": fx, "fb": fb, "allow": np.broadcast_to(allow, ig.shape), "allow_sum": allow_sum,
                    "fragile": fragile, "strays": stray, "recomputed": np.broadcast_to(details["recomputed"], ig.shape),
                    "n_recomputed": details["n_recomputed"], "n_bounded": details["n_bounded"],
                    "t": time.time() - t2}
    return pt


def check_entry(args, entry, set_dir, ref_cache, shared, ck):
    name = entry["file"][:-len(".onnx")]
    big = entry["size"] > 64
    backends = args.backends_224 if big else args.backends
    with_ig = args.ig_224 or not big
    t0 = time.time()
    path = os.path.join(args.workdir, name + ".safetensors")
    r = import_entry(args, entry, set_dir, path)
    if not ck.check(r.returncode == 0, f"{name}: igscope import exited {r.returncode}: {r.stderr.strip()}"):
        return
    _, arch = torch_model.load_model(path)
    pre = arch["nodes"][0]
    ck.check(pre["id"] == "preprocess" and pre["type"] == "affine" and pre["inputs"] == ["input"],
             f"{name}: the first node is not the preprocess affine on the input")
    ref_key, ref = reference_module(entry, ref_cache)
    key = (content_key(path), ref_key, big, with_ig)
    print(f"{name}: {len(arch['nodes'])} nodes, imported", flush=True)
    if key in shared:
        first, pt = shared[key]
        print(f"  convert   the same graph and weights as {first}: its float64 results stand for this file", flush=True)
    else:
        pt = torch_side(args, entry, path, ref, big, with_ig)
        shared[key] = (name, pt)
        ok = ck.check(pt["conv_l"] <= CONVERSION_TOLERANCE,
                      f"{name}: conversion: the imported graph's float64 logits differ by {pt['conv_l']:.2e} of the "
                      f"largest")
        ok &= ck.check(pt["conv_gx"] <= CONVERSION_TOLERANCE,
                       f"{name}: conversion: the imported graph's float64 gradient differs by {pt['conv_g']:.2e} "
                       f"({pt['conv_gx']:.2e} beyond the allowance) of the largest")
        ok &= ck.check(pt["strays"] <= decisions.MARGIN / 2,
                       f"{name}: PyTorch's float32 pass strays {pt['strays']:.1f} rounding scales from float64, more "
                       f"than half the margin {decisions.MARGIN:g} of the decision rule")
        print(f"  convert   logits {pt['conv_l']:.1e}  grad {pt['conv_g']:.1e} (beyond allowance "
              f"{pt['conv_gx']:.1e})  tolerance {CONVERSION_TOLERANCE:g}  strays {pt['strays']:.2f}  "
              f"[{pt['t_allow']:.1f} s]  {'ok' if ok else 'FAIL'}", flush=True)
    row = {"model": name, "conv_logits": pt["conv_l"], "conv_grad": pt["conv_g"], "fragile": pt["fragile"],
           "n_bounded": pt["n_bounded"], "strays": pt["strays"], "backends": {}, "ig": {}}
    ck.rows.append(row)

    # (c) igscope against PyTorch float64.
    n = pt["n"]
    input_path = os.path.join(args.workdir, name + "_input.f32")
    pt["x_nhwc"].astype("<f4").tofile(input_path)
    want_logits, want_grad = pt["want_logits"], pt["want_grad"]
    lscale = np.abs(want_logits).max()
    for backend in backends:
        out = os.path.join(args.workdir, f"{name}_{backend}.json")
        got = run_json(ck, [args.dump, path, input_path, n, ",".join(map(str, pt["targets"])), out, backend], out,
                       f"{name} {backend}: dump_model_outputs")
        if got is None:
            continue
        have_logits = np.asarray(got["logits"], dtype=np.float64).reshape(want_logits.shape)
        have_grad = np.asarray(got["grad"], dtype=np.float64).reshape(want_grad.shape)
        diffs = [np.abs(have_grad[i] - want_grad[i]) for i in range(n)]
        err_l = np.abs(have_logits - want_logits).max() / lscale
        err_g = max(d.max() / g for d, g in zip(diffs, pt["gscale"]))
        exc_g = max((d - a).max() / g for d, a, g in zip(diffs, pt["allowances"], pt["gscale"]))
        exc_r = max((d - a).max() / g for d, a, g in zip(diffs, pt["recomputed"], pt["gscale"]))
        ok = ck.check(err_l <= TOLERANCE, f"{name} {backend}: logits differ by {err_l:.2e} of the largest")
        ok &= ck.check(exc_g <= TOLERANCE, f"{name} {backend}: input gradient differs by {err_g:.2e} of the "
                                           f"largest, {exc_g:.2e} beyond the decision allowance")
        print(f"  {backend:9s} logits {err_l:.1e}  grad {err_g:.1e}  allowance {pt['allow_rel']:.1e}  "
              f"excess {exc_g:.1e} ({exc_r:.1e} beyond the recomputed flips alone)  fragile {pt['fragile']} "
              f"({pt['n_bounded']} bounded)  {verdict(ok, exc_r)}", flush=True)
        row["backends"][backend] = {"logits": err_l, "grad": err_g, "allow": pt["allow_rel"], "excess": exc_g,
                                    "excess_recomputed": exc_r}

    # (d) IG from the black baseline.
    if not with_ig:
        print(f"  [{time.time() - t0:.1f} s]", flush=True)
        return
    q = pt["ig"]
    ig, fx, fb = q["ig"], q["fx"], q["fb"]
    scale = np.abs(ig).max()
    target = pt["targets"][0]
    ck.check(scale > 0, f"{name}: PyTorch's IG is all zero")
    ck.check(q["strays"] <= decisions.MARGIN / 2,
             f"{name} IG: PyTorch's float32 pass strays {q['strays']:.1f} rounding scales")
    png = os.path.join(args.workdir, name + ".png")
    write_png(png, pt["u8"][0])
    for backend in backends:
        out = os.path.join(args.workdir, f"{name}_ig_{backend}.json")
        ours = run_json(ck, [args.igscope, "attribute", "--model", path, "--input", png, "--method", "ig", "--baseline",
                             "black", "--quadrature", IG_QUADRATURE, "--steps", IG_STEPS, "--target", target,
                             "--output", "logit", "--backend", backend, "--json", out], out,
                        f"{name} IG {backend}: igscope attribute")
        if ours is None:
            continue
        attr = np.asarray(ours["attributions"], dtype=np.float64).reshape(ig.shape)
        diff = np.abs(attr - ig)
        rel = diff.max() / scale
        excess = (diff - q["allow"]).max() / scale
        exc_r = (diff - q["recomputed"]).max() / scale
        gap = ig.sum() - (fx - fb)
        dfx, dfb, dgap = abs(ours["f_input"] - fx), abs(ours["f_baseline"] - fb), abs(ours["gap"] - gap)
        fscale = max(abs(fx), abs(fb), 1e-3)
        gap_exc = (dgap - q["allow_sum"] - dfx - dfb) / max(abs(fx - fb), 1e-3)
        ok = ck.check(ours["target"] == target, f"{name} IG {backend}: target {ours['target']} != {target}")
        ok &= ck.check(excess <= TOLERANCE, f"{name} IG {backend}: attributions differ by {rel:.2e} of the largest, "
                                            f"{excess:.2e} beyond the allowance ({q['fragile']} fragile decisions)")
        ok &= ck.check(dfx <= TOLERANCE * fscale and dfb <= TOLERANCE * fscale,
                       f"{name} IG {backend}: F(x) or F(x') differs ({dfx:.2e}, {dfb:.2e}; |F| {fscale:.3g})")
        ok &= ck.check(gap_exc <= TOLERANCE, f"{name} IG {backend}: the gap differs by {dgap:.2e}, "
                                             f"{gap_exc:.2e} of |F(x) - F(x')| beyond what is allowed")
        print(f"  IG {backend:6s} attr {rel:.1e}  allowance {np.max(q['allow']) / scale:.1e}  excess {excess:.1e} "
              f"({exc_r:.1e} beyond the {q['n_recomputed']} recomputed flips alone)  fragile {q['fragile']}  "
              f"strays {q['strays']:.2f}  |dF(x)| {dfx:.1e}  gap exc {gap_exc:.1e}  [{q['t']:.1f} s]  "
              f"{verdict(ok, exc_r)}", flush=True)
        row["ig"][backend] = {"attr": rel, "allow": float(np.max(q["allow"]) / scale), "excess": excess,
                              "excess_recomputed": exc_r, "fragile": q["fragile"], "n_bounded": q["n_bounded"],
                              "gap_exc": gap_exc}
    print(f"  [{time.time() - t0:.1f} s]", flush=True)


def int_list(text):
    return [int(v) for v in text.split(",") if v]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--dump", required=True, help="build/tests/dump_model_outputs")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--set", help="a built ONNX test set (default: build one into WORKDIR/set)")
    ap.add_argument("--sizes", type=int_list, default=[64, 224], help="sizes of the torchvision models")
    ap.add_argument("--opsets", type=int_list, default=[13, 17])
    ap.add_argument("--only", help="comma-separated model names")
    ap.add_argument("--backends", default="reference,simd", help="backends for the 28x28 and 64x64 models")
    ap.add_argument("--backends-224", default="simd", help="backends for the larger sizes")
    ap.add_argument("--images", type=int, default=2, help="images per model for the gradient checks (1 at 224)")
    ap.add_argument("--ig-224", action="store_true", help="IG at the larger sizes too (slow)")
    ap.add_argument("--exact-224", type=int, default=0,
                    help="fragile decisions recomputed exactly at the larger sizes (default 0: all bounded)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    args = ap.parse_args()
    args.backends = [b for b in args.backends.split(",") if b]
    args.backends_224 = [b for b in args.backends_224.split(",") if b]
    torch.set_num_threads(args.threads)
    os.makedirs(args.workdir, exist_ok=True)
    only = [n for n in args.only.split(",") if n] if args.only else None
    t_start = time.time()

    set_dir = args.set
    if set_dir is None:
        set_dir = os.path.join(args.workdir, "set")
        t0 = time.time()
        onnx_models.build(set_dir, only=only, sizes=args.sizes, opsets=args.opsets)
        print(f"built the ONNX test set in {set_dir} in {time.time() - t0:.1f} s", flush=True)
    entries = [e for e in onnx_models.load_manifest(set_dir) if "unsupported" not in e]
    entries = [e for e in entries if (only is None or e["model"] in only) and e["opset"] in args.opsets and
               (e["size"] in args.sizes or e["model"] not in onnx_models.TORCHVISION)]
    # Smaller sizes first, one model's sizes and opsets together (its reference module is cached).
    entries.sort(key=lambda e: (e["size"], e["model"], e["opset"]))
    ck = Checker()
    ref_cache, shared = {}, {}
    for entry in entries:
        try:
            check_entry(args, entry, set_dir, ref_cache, shared, ck)
        except Exception as exc:  # a crash in one model's checks is that model's failure
            import traceback
            traceback.print_exc()
            ck.check(False, f"{entry['file']}: {type(exc).__name__}: {exc}")

    print("\nsummary (errors relative to the largest magnitude; allow: the largest decision allowance; excess: the "
          "error less the allowance, <= 1e-4 to pass; exc rec: the error less the recomputed flips' part of the "
          "allowance alone; fragile: decisions within the margin (of them, bounded: not recomputed))")
    print(f"{'model':24s} {'conv lgt':>8s} {'conv grd':>8s} {'backend':9s} {'logits':>8s} {'grad':>8s} "
          f"{'allow':>8s} {'excess':>8s} {'exc rec':>8s} {'fragile':>7s} {'bounded':>7s} | {'IG attr':>8s} "
          f"{'allow':>8s} {'excess':>8s} {'exc rec':>8s} {'fragile':>7s} {'bounded':>7s} {'gap exc':>8s}")
    f8 = lambda v: f"{v:8.1e}"  # noqa: E731
    for row in ck.rows:
        for backend, b in row["backends"].items():
            ig = row["ig"].get(backend)
            tail = (f"{f8(ig['attr'])} {f8(ig['allow'])} {f8(ig['excess'])} {f8(ig['excess_recomputed'])} "
                    f"{ig['fragile']:7d} {ig['n_bounded']:7d} {f8(ig['gap_exc'])}" if ig else "       -")
            print(f"{row['model']:24s} {f8(row['conv_logits'])} {f8(row['conv_grad'])} {backend:9s} "
                  f"{f8(b['logits'])} {f8(b['grad'])} {f8(b['allow'])} {f8(b['excess'])} "
                  f"{f8(b['excess_recomputed'])} {row['fragile']:7d} {row['n_bounded']:7d} | {tail}")
    print(f"{len(entries)} models in {time.time() - t_start:.0f} s")
    if ck.failed:
        print(f"{len(ck.failed)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
