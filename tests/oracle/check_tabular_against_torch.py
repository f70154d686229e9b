#!/usr/bin/python3
"""Independent oracle for the tabular regressor: `igscope eval-tabular` and
`igscope attribute --input diabetes:INDEX` against numpy and PyTorch.

Reads the diabetes data here (numpy, from python3-sklearn's files) and the
model file with tests/oracle/torch_model.py. Checks: the held-out split
igscope reports has the stated size and the training split is its
complement; the standardisation in the model file equals the training
split's mean and (population) standard deviation computed here; PyTorch's
predictions and R^2 on both splits equal igscope's, and the held-out R^2
clears a floor; and, for several rows, baselines (mean, median, zero) and
quadratures, IG = (x - x') * sum_k w_k dF/dx(x' + alpha_k (x - x')) in
PyTorch float64 agrees with igscope's within 1e-4 of max |attribution|, with
the baseline rebuilt here from the training rows. Also bad requests.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model  # noqa: E402
from quadrature_rules import rule  # noqa: E402

TOLERANCE = 1e-4
R2_FLOOR = 0.40
DATA_DIR = os.environ.get("IGSCOPE_DIABETES_DIR", "/usr/lib/python3/dist-packages/sklearn/datasets/data")


def load_rows(name):
    with gzip.open(os.path.join(DATA_DIR, name), "rt") as f:
        return np.loadtxt(f, dtype=np.float64, ndmin=2)


def r2(p, y):
    return 1.0 - ((y - p) ** 2).sum() / ((y - y.mean()) ** 2).sum()


CASES = [
    # (row, baseline, quadrature, steps)
    (0, "mean", "gausslegendre", 32),
    (5, "median", "gausslegendre", 32),
    (100, "constant:0", "riemann_trapezoid", 20),
    (441, "median", "riemann_middle", 24),
    (17, "mean", "gausslegendre", 8),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    failed = []

    def check(cond, what):
        if not cond:
            failed.append(what)
            print(f"FAIL: {what}")

    raw = load_rows("diabetes_data_raw.csv.gz")
    y = load_rows("diabetes_target.csv.gz")[:, 0]
    check(raw.shape == (442, 10) and y.shape == (442,), f"data shapes {raw.shape} {y.shape}")
    metadata, _ = torch_model.read_safetensors(args.model)
    info = json.loads(metadata["architecture"])["tabular"]
    model, _ = torch_model.load_model(args.model)
    model = model.double()

    r = subprocess.run([args.igscope, "eval-tabular", "--model", args.model, "--json"], capture_output=True, text=True)
    check(r.returncode == 0, f"eval-tabular exited {r.returncode}: {r.stderr.strip()}")
    ours = json.loads(r.stdout)
    held = np.array(ours["held_out"]["indices"], dtype=np.int64)
    train = np.array(ours["train"]["indices"], dtype=np.int64)
    check(len(held) == round(442 * info["test_fraction"]), f"held-out size {len(held)}")
    check(sorted(np.concatenate([held, train]).tolist()) == list(range(442)), "the splits do not partition the rows")

    mean, std = raw[train].mean(0), raw[train].std(0)
    # igscope reads the raw values into float32: about 1e-7 relative
    dmean = np.abs(np.array(info["mean"]) - mean).max() / np.abs(mean).max()
    dstd = np.abs(np.array(info["std"]) - std).max() / np.abs(std).max()
    print(f"standardisation: max rel. difference of the stored means {dmean:.1e}, of the stds {dstd:.1e}")
    check(dmean <= 1e-6, f"stored means differ by {dmean:.2e}")
    check(dstd <= 1e-6, f"stored stds differ by {dstd:.2e}")
    xs = (raw - mean) / std

    with torch.no_grad():
        pred = model(torch.from_numpy(xs)).numpy()[:, 0]
    for name, idx in (("train", train), ("held_out", held)):
        ours_p = np.array(ours[name]["predictions"])
        dp = np.abs(ours_p - pred[idx]).max() / np.abs(pred[idx]).max()
        ours_r2, torch_r2 = ours[name]["r2"], r2(pred[idx], y[idx])
        print(f"{name:9s} R^2 igscope {ours_r2:.4f}  PyTorch {torch_r2:.4f}  max rel. prediction difference {dp:.1e}")
        check(dp <= TOLERANCE, f"{name}: predictions differ by {dp:.2e}")
        check(abs(ours_r2 - torch_r2) <= 1e-4, f"{name}: R^2 {ours_r2} != {torch_r2}")
    check(ours["held_out"]["r2"] > R2_FLOOR, f"held-out R^2 {ours['held_out']['r2']:.4f} is below {R2_FLOOR}")
    # A reference point: ordinary least squares on the same split.
    a = np.hstack([xs[train], np.ones((len(train), 1))])
    coef, *_ = np.linalg.lstsq(a, y[train], rcond=None)
    ols = r2(np.hstack([xs[held], np.ones((len(held), 1))]) @ coef, y[held])
    print(f"ordinary least squares on the same split: held-out R^2 {ols:.4f}")

    print(f"{'row':>4s} {'baseline':11s} {'quadrature':18s} {'n':>3s} {'max|diff|/max|attr|':>20s} {'gap':>10s}")
    for row, spec, quad, steps in CASES:
        out_json = os.path.join(args.workdir, f"tabular_{row}.json")
        r = subprocess.run([args.igscope, "attribute", "--model", args.model, "--input", f"diabetes:{row}",
                            "--baseline", spec, "--quadrature", quad, "--steps", str(steps), "--batch", "5",
                            "--json", out_json], capture_output=True, text=True)
        if r.returncode != 0:
            check(False, f"diabetes:{row} {spec}: exited {r.returncode}: {r.stderr.strip()}")
            continue
        check("completeness" in r.stdout and "s6" in r.stdout, f"diabetes:{row}: no feature table printed")
        with open(out_json) as f:
            got = json.load(f)
        x = xs[row]
        if spec == "mean":
            b = xs[train].mean(0)
        elif spec == "median":
            b = np.median(xs[train], axis=0)
        else:
            b = np.zeros(10)
        check(np.abs(np.array(got["baseline_image"]) - b).max() <= 1e-5, f"diabetes:{row}: baseline {spec} differs")
        check(got["features"] == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], "feature names")
        check(abs(got["target_value"] - y[row]) < 1e-9, f"diabetes:{row}: target value")
        check(got["held_out"] == (row in set(held.tolist())), f"diabetes:{row}: held-out flag")
        alphas, weights = rule(quad, steps)
        pts = torch.from_numpy(b[None, :] + alphas[:, None] * (x - b)[None, :]).requires_grad_(True)
        model(pts)[:, 0].sum().backward()
        ig = (x - b) * (weights[:, None] * pts.grad.numpy()).sum(0)
        with torch.no_grad():
            fx, fb = (float(v) for v in model(torch.from_numpy(np.stack([x, b])))[:, 0])
        attr = np.array(got["attributions"])
        rel = np.abs(attr - ig).max() / np.abs(ig).max()
        gap = ig.sum() - (fx - fb)
        print(f"{row:4d} {spec:11s} {quad:18s} {steps:3d} {rel:20.1e} {got['gap']:10.2e}")
        check(rel <= TOLERANCE, f"diabetes:{row} {spec}: max|diff| / max|attr| = {rel:.2e}")
        check(abs(got["f_input"] - fx) <= TOLERANCE * abs(fx) and abs(got["f_baseline"] - fb) <= TOLERANCE * abs(fb),
              f"diabetes:{row}: F(x) or F(x') differs")
        check(abs(got["gap"] - gap) <= TOLERANCE * max(abs(fx - fb), 1.0), f"diabetes:{row}: gap differs")

    base = [args.igscope, "attribute", "--model", args.model]
    for extra, message in (
        (["--input", "diabetes:442"], "the diabetes data has 442 rows (0..441)"),
        (["--input", "test:0"], "a tabular model takes diabetes:INDEX"),
        (["--input", "diabetes:1", "--png", os.path.join(args.workdir, "x.png")], "a tabular model's attributions are a table"),
        (["--input", "diabetes:1", "--output", "probability"], "the model has one output"),
        (["--input", "diabetes:1", "--baseline", "constant:50"], "is outside the valid range"),
    ):
        r = subprocess.run(base + extra, capture_output=True, text=True)
        print(f"error    {' '.join(extra[:4]):40s} -> {r.stderr.strip()}")
        check(r.returncode == 1 and message in r.stderr, f"{' '.join(extra)}: expected '{message}', got {r.stderr.strip()}")

    if failed:
        print(f"{len(failed)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
