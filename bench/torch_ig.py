#!/usr/bin/python3
"""Integrated Gradients in PyTorch against `igscope bench`, side by side in one run.

For one Fashion-MNIST test image and a model file, times the same IG in
PyTorch (Debian's python3-torch, CPU) that `igscope bench` times: Gauss-
Legendre nodes on the straight path from a black baseline, the path points
fed as batches of 32, the gradient of the target logit with respect to the
batch by autograd (weights frozen, so only input gradients are computed),
plus one forward pass of the input and the baseline for the completeness
gap. Both sides run with the same thread counts. PyTorch runs in both
memory formats (NCHW and channels_last) and the faster one is the
reference. For each (threads, steps) it runs igscope's backends and PyTorch
alternately, `--rounds` times, and reports medians and the ratios
PyTorch ms / igscope ms (> 1: igscope is faster).

PyTorch is timed as its users have it: it first says which BLAS its
libblas.so.3 resolves to in this process (read from /proc/self/maps after a
matmul) and which convolution kernels autograd runs (the profiler's op
names: oneDNN's aten::mkldnn_convolution, or im2col + BLAS in
aten::_slow_conv2d_*), and it refuses to report a ratio (exit status 3) when
the BLAS is the reference one (Debian's libblas3, in
/usr/lib/x86_64-linux-gnu/blas/), on which PyTorch is several times slower
than on OpenBLAS (libopenblas0-openmp, which update-alternatives then
prefers).

Run with Debian's interpreter (python3 on PATH may be another one):
  /usr/bin/python3 bench/torch_ig.py --igscope build/igscope --model M.safetensors
"""
import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
import warnings

# --torch-isa avx2: PyTorch as it runs on an AVX2-only CPU (oneDNN, OpenBLAS and
# ATen each pick their kernels for the CPU at run time). Their settings must
# be in the environment before torch loads, so the script starts again with them.
TORCH_ISA_ENV = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2"}}


def torch_isa_from_argv():
    for i, a in enumerate(sys.argv):
        if a == "--torch-isa" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if a.startswith("--torch-isa="):
            return a.split("=", 1)[1]
    return "native"


_isa = torch_isa_from_argv()
if _isa in TORCH_ISA_ENV and any(os.environ.get(k) != v for k, v in TORCH_ISA_ENV[_isa].items()):
    os.environ.update(TORCH_ISA_ENV[_isa])
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np  # noqa: E402
import torch  # noqa: E402

warnings.filterwarnings("ignore", message="Lazy modules are a new feature")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "oracle"))
from torch_model import load_model, to_torch_input  # noqa: E402

FASHION_DIR = os.environ.get("IGSCOPE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
REFERENCE_BLAS_DIR = "/usr/lib/x86_64-linux-gnu/blas/"  # Debian's libblas3: the reference (netlib) BLAS
BLAS_ALTERNATIVE = "/etc/alternatives/libblas.so.3-x86_64-linux-gnu"
REFUSED = 3  # exit status when PyTorch runs on the reference BLAS


def mapped_files():
    """The files mapped into this process."""
    with open("/proc/self/maps") as f:
        return {fields[5].strip() for fields in (line.split(maxsplit=5) for line in f) if len(fields) == 6}


def blas_in_use():
    """Which BLAS PyTorch calls: the libblas.so.3 file mapped after a matmul (the dynamic loader's answer, so
    LD_LIBRARY_PATH and the alternatives system both count), any OpenBLAS / MKL / BLIS library mapped with it,
    and its kind: "reference", "openblas", "mkl", "blis" or "unknown"."""
    a = torch.ones(64, 64)
    (a @ a).sum().item()
    mapped = mapped_files()
    libblas = sorted(p for p in mapped if os.path.basename(p).startswith("libblas.so"))
    named = sorted(p for p in mapped if any(k in os.path.basename(p) for k in ("openblas", "libmkl", "libblis")))
    if any(p.startswith(REFERENCE_BLAS_DIR) for p in libblas):
        kind = "reference"
    elif any("openblas" in p for p in libblas + named):
        kind = "openblas"
    elif any("mkl" in p for p in libblas + named):
        kind = "mkl"
    elif any("blis" in p for p in libblas + named):
        kind = "blis"
    else:
        kind = "unknown"
    alternative = os.path.realpath(BLAS_ALTERNATIVE) if os.path.lexists(BLAS_ALTERNATIVE) else None
    return {"kind": kind, "libblas": libblas, "libraries": named, "alternative": alternative}


def convolution_in_use(model, x, batch):
    """Which convolution kernels PyTorch runs for a batch of path points in each memory format: the profiler's op
    names below aten::convolution (aten::convolution_backward, the input gradient, calls the backend the forward
    chose without an op of its own), and whether oneDNN (mkldnn) is there. Dense layers are aten::addmm / mm:
    BLAS sgemm."""
    generic = {"aten::conv2d", "aten::convolution", "aten::_convolution", "aten::convolution_backward",
               "ConvolutionBackward0"}
    ops = {}
    for name, channels_last in (("nchw", False), ("channels_last", True)):
        ig = TorchIG(model, x, 0, batch, batch, channels_last)
        with torch.autograd.profiler.profile() as prof:
            ig.run()
        ops[name] = sorted({e.name for e in prof.function_events if "conv" in e.name.lower() and e.name not in generic and not e.name.startswith("autograd::")})
    version = next((line.split("Intel(R) MKL-DNN", 1)[1].split("(")[0].strip()
                    for line in torch.__config__.show().splitlines() if "MKL-DNN" in line), None)
    return {"mkldnn_available": torch.backends.mkldnn.is_available(), "mkldnn_enabled": torch.backends.mkldnn.enabled,
            "onednn_version": version, "ops": ops,
            "dnnl_library": sorted(p for p in mapped_files() if "libdnnl" in os.path.basename(p))}


def describe_libraries(blas, conv):
    where = ", ".join(blas["libblas"] + [p for p in blas["libraries"] if p not in blas["libblas"]]) or "no libblas mapped"
    lines = [f"BLAS: {blas['kind']} ({where}; {BLAS_ALTERNATIVE} -> {blas['alternative']})"]
    onednn = "available" if conv["mkldnn_available"] else "not available"
    if conv["mkldnn_available"]:
        onednn += ", enabled" if conv["mkldnn_enabled"] else ", disabled"
    lines.append(f"convolutions: oneDNN (mkldnn) {onednn}, version {conv['onednn_version']}; ops run: "
                 + "; ".join(f"{k} {', '.join(v) or '?'}" for k, v in conv["ops"].items()))
    return lines


def test_image(index):
    """Test image `index` of Fashion-MNIST as [1, 28, 28, 1] floats in [0, 1] (NHWC)."""
    path = os.path.join(FASHION_DIR, "t10k-images-idx3-ubyte.gz")
    with gzip.open(path, "rb") as f:
        raw = f.read()
    count, rows, cols = (int.from_bytes(raw[o : o + 4], "big") for o in (4, 8, 12))
    if not 0 <= index < count:
        raise SystemExit(f"--image {index}: the test set has {count} images")
    pixels = np.frombuffer(raw, dtype=np.uint8, count=rows * cols, offset=16 + index * rows * cols)
    return (pixels.astype(np.float32) / 255.0).reshape(1, rows, cols, 1)


def gauss_legendre(n):
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return (nodes + 1.0) / 2.0, weights / 2.0


class TorchIG:
    def __init__(self, model, x, target, steps, batch_size, channels_last=False):
        self.model = model
        for p in model.parameters():
            p.requires_grad_(False)
        if channels_last:
            model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            model.to(memory_format=torch.contiguous_format)
        self.x = x
        self.baseline = torch.zeros_like(x)
        self.target = target
        alphas, weights = gauss_legendre(steps)
        self.alphas = torch.tensor(alphas, dtype=torch.float32)
        self.weights = torch.tensor(weights, dtype=torch.float32)
        self.batch_size = batch_size

    def run(self):
        diff = self.x - self.baseline
        total = torch.zeros_like(self.x)
        for begin in range(0, len(self.alphas), self.batch_size):
            a = self.alphas[begin : begin + self.batch_size].view(-1, 1, 1, 1)
            w = self.weights[begin : begin + self.batch_size].view(-1, 1, 1, 1)
            points = (self.baseline + a * diff).requires_grad_(True)
            out = self.model(points)[:, self.target]
            (grad,) = torch.autograd.grad(out.sum(), points)
            total += (grad * w).sum(0, keepdim=True)
        with torch.no_grad():
            ends = self.model(torch.cat([self.baseline, self.x]))[:, self.target]
        attributions = diff * total
        gap = attributions.sum().item() - (ends[1] - ends[0]).item()
        return attributions, gap

    def forward_batch(self):
        a = self.alphas[: self.batch_size].view(-1, 1, 1, 1)
        with torch.no_grad():
            self.model(self.baseline + a * (self.x - self.baseline))


def time_median(fn, min_seconds, min_repeats):
    fn()  # warm-up
    times = []
    start = time.perf_counter()
    while len(times) < min_repeats or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def igscope_bench(args, backend, threads, steps):
    cmd = [args.igscope, "bench", "--model", args.model, "--backend", backend, "--threads", str(threads),
           "--steps", str(steps), "--image", str(args.image), "--min-seconds", str(args.min_seconds), "--json"]
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--igscope", required=True, help="the igscope command")
    ap.add_argument("--model", required=True, help="model file (.safetensors)")
    ap.add_argument("--backends", default="xnnpack,simd,eigen")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", default="32,64")
    ap.add_argument("--image", type=int, default=0, help="Fashion-MNIST test image")
    ap.add_argument("--batch", type=int, default=32, help="path points per pass (igscope bench's default)")
    ap.add_argument("--min-seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=1, help="alternate igscope and PyTorch this many times")
    ap.add_argument("--torch-isa", choices=["native"] + sorted(TORCH_ISA_ENV), default="native",
                    help="native: PyTorch's kernels for this CPU; avx2: those an AVX2-only CPU runs ("
                         + ", ".join(f"{k}={v}" for k, v in TORCH_ISA_ENV["avx2"].items())
                         + "), to compare with an x86-64-v3 build of igscope on a newer CPU")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    model, _ = load_model(args.model)
    x = to_torch_input(test_image(args.image))
    blas = blas_in_use()
    conv = convolution_in_use(model, x, args.batch)
    libraries = describe_libraries(blas, conv)
    if args.torch_isa != "native":
        libraries.append(f"kernels limited to {args.torch_isa}: "
                         + ", ".join(f"{k}={v}" for k, v in TORCH_ISA_ENV[args.torch_isa].items()))
    for line in libraries:
        print(f"PyTorch {torch.__version__} {line}", file=sys.stderr)
    if blas["kind"] == "reference":
        print(
            f"torch_ig.py: refusing to report a ratio: PyTorch's libblas.so.3 is the reference BLAS "
            f"({', '.join(blas['libblas'])}, Debian's libblas3), not the PyTorch its users run (measured on Zen 3: "
            f"55.5 ms per 32-step IG against 16.1 ms on OpenBLAS). Install libopenblas0-openmp (the alternatives "
            f"system then points libblas.so.3 at OpenBLAS; check with update-alternatives --display "
            f"libblas.so.3-x86_64-linux-gnu) and run again."
            + ("" if blas["alternative"] is None or blas["alternative"].startswith(REFERENCE_BLAS_DIR) else
               f" The alternatives link already points at {blas['alternative']}: LD_LIBRARY_PATH (or LD_PRELOAD) "
               f"chose the reference one."), file=sys.stderr)
        sys.exit(REFUSED)
    backends = [b for b in args.backends.split(",") if b]
    rows = []
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        for steps in [int(s) for s in args.steps.split(",")]:
            ours = {b: [] for b in backends}
            layouts = {"nchw": False, "channels_last": True}
            torch_ig = {name: [] for name in layouts}
            torch_fwd = {name: [] for name in layouts}
            target = None
            for _ in range(args.rounds):
                for b in backends:
                    r = igscope_bench(args, b, threads, steps)
                    ours[b].append(r)
                    target = r["target_class"]
                for name, channels_last in layouts.items():
                    ig = TorchIG(model, x, target, steps, args.batch, channels_last)
                    torch_ig[name].append(time_median(ig.run, args.min_seconds, 5))
                    torch_fwd[name].append(time_median(ig.forward_batch, args.min_seconds, 5))
            per_layout = {name: statistics.median(v) for name, v in torch_ig.items()}
            best = min(per_layout, key=per_layout.get)
            _, gap = TorchIG(model, x, target, steps, args.batch, layouts[best]).run()
            row = {"threads": threads, "steps": steps, "torch_layout": best, "torch_ms_per_ig": per_layout[best],
                   "torch_ms_per_ig_by_layout": per_layout,
                   "torch_ms_forward_batch": statistics.median(torch_fwd[best]), "torch_gap": gap, "igscope": {}}
            for b in backends:
                ms = statistics.median(r["ms_per_ig"] for r in ours[b])
                fwd = statistics.median(r["ms_forward_batch"] for r in ours[b])
                row["igscope"][b] = {"ms_per_ig": ms, "ms_forward_batch": fwd, "gflops_ig": ours[b][0]["flops_per_ig"] / (ms * 1e6),
                                     "torch_over_igscope": row["torch_ms_per_ig"] / ms, "gap": ours[b][-1]["gap"]}
            rows.append(row)
            if not args.json:
                print(f"threads {threads}, {steps} steps: PyTorch "
                      + ", ".join(f"{k} {v:.2f} ms" for k, v in per_layout.items()) + "; "
                      + ", ".join(f"{b} {row['igscope'][b]['ms_per_ig']:.2f} ms" for b in backends), file=sys.stderr)

    if args.json:
        print(json.dumps({"torch": torch.__version__, "torch_isa": args.torch_isa, "blas": blas, "convolution": conv,
                          "image": args.image,
                          "batch": args.batch, "rows": rows}, indent=2))
        return
    print(f"\nIG of Fashion-MNIST test image {args.image}, Gauss-Legendre, batches of {args.batch}; "
          f"PyTorch {torch.__version__} (CPU); medians")
    for line in libraries:
        print(f"PyTorch {line}")
    header = f"{'threads':>7} {'steps':>5} | {'PyTorch ms':>10} {'(layout)':>15} |"
    for b in backends:
        header += f" {b + ' ms':>12} {'PyTorch/' + b:>17} |"
    print(header)
    for row in rows:
        line = f"{row['threads']:>7} {row['steps']:>5} | {row['torch_ms_per_ig']:>10.2f} {row['torch_layout']:>15} |"
        for b in backends:
            r = row["igscope"][b]
            line += f" {r['ms_per_ig']:>12.2f} {r['torch_over_igscope']:>16.2f}x |"
        print(line)
    print("\nforward pass of a batch of 32 path points (ms):")
    for row in rows:
        if row["steps"] != rows[0]["steps"]:
            continue
        print(f"  threads {row['threads']}: PyTorch {row['torch_ms_forward_batch']:.2f}; "
              + ", ".join(f"{b} {row['igscope'][b]['ms_forward_batch']:.2f}" for b in backends))


if __name__ == "__main__":
    main()
