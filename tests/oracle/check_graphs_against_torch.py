#!/usr/bin/env python3
"""Graph models against PyTorch: random graphs in igscope's graph form (a
ResNet-style network, an Inception-style block of parallel branches into a
concat, a MobileNet-style block with depthwise convolutions, relu6,
squeeze-and-excitation and hardswish, a ViT-style network with attention,
layer norms, a class token and position embeddings) get random weights and
batch-norm statistics in PyTorch, are written from the state_dict in the layout
igscope's loader reads, read back on their own by torch_model.py
(load_state_dict(strict=True) into a module tree at the node ids) and
evaluated in float64; igscope (dump_model_outputs, on every CPU backend it
offers) must give the same logits and input gradients of a chosen logit
within 1e-4 of the largest magnitude of each.

The only decisions in these graphs are the kinks of relu, relu6 (0 and 6),
hardswish and hardsigmoid (-3 and 3); there is no max-pool. Inputs are
smooth random images, and a batch is redrawn while any
pre-activation lies within 2e-5 of a kink, relative to
the largest magnitude at that node, where float32 rounding (about 1e-6 of
it) could flip the decision; the script says how many batches it redrew.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_model import GraphNet, load_model, to_nhwc, to_torch_input, write_safetensors  # noqa: E402

TOLERANCE = 1e-4
KINK_MARGIN = 2e-5


def conv(node_id, inp, out, kernel, stride=1, padding=None, **extra):
    spec = {"id": node_id, "type": "conv2d", "inputs": [inp], "out_channels": out, "kernel": kernel,
            "stride": stride, "padding": kernel // 2 if padding is None else padding}
    spec.update(extra)
    return spec


def unary(node_id, t, inp, **extra):
    return dict({"id": node_id, "type": t, "inputs": [inp]}, **extra)


def resnet_style(rng):
    """A stem, an identity block and a downsampling block (torchvision's names)."""
    c1, c2 = int(rng.integers(4, 9)), int(rng.integers(6, 13))
    nodes = [conv("conv1", "input", c1, 3), unary("bn1", "batchnorm", "conv1"), unary("relu", "relu", "bn1")]
    nodes += [conv("layer1.0.conv1", "relu", c1, 3), unary("layer1.0.bn1", "batchnorm", "layer1.0.conv1"),
              unary("layer1.0.relu1", "relu", "layer1.0.bn1"), conv("layer1.0.conv2", "layer1.0.relu1", c1, 3),
              unary("layer1.0.bn2", "batchnorm", "layer1.0.conv2"),
              {"id": "layer1.0.add", "type": "add", "inputs": ["layer1.0.bn2", "relu"]},
              unary("layer1.0.relu2", "relu", "layer1.0.add")]
    nodes += [conv("layer2.0.conv1", "layer1.0.relu2", c2, 3, stride=2),
              unary("layer2.0.bn1", "batchnorm", "layer2.0.conv1"), unary("layer2.0.relu1", "relu", "layer2.0.bn1"),
              conv("layer2.0.conv2", "layer2.0.relu1", c2, 3), unary("layer2.0.bn2", "batchnorm", "layer2.0.conv2"),
              conv("layer2.0.downsample.0", "layer1.0.relu2", c2, 1, stride=2),
              unary("layer2.0.downsample.1", "batchnorm", "layer2.0.downsample.0"),
              {"id": "layer2.0.add", "type": "add", "inputs": ["layer2.0.bn2", "layer2.0.downsample.1"]},
              unary("layer2.0.relu2", "relu", "layer2.0.add"), unary("flatten", "flatten", "layer2.0.relu2"),
              {"id": "fc", "type": "dense", "inputs": ["flatten"], "out_features": 7}]
    return {"name": "resnet_style", "input": [10, 10, 3], "output": "fc", "nodes": nodes}


def inception_style(rng):
    """Parallel 1x1, 3x3 and 5x5 branches of unequal widths, and a 1x1 branch
    reading the 3x3 branch's input too, joined by concat; then a three-input add."""
    b = [int(v) for v in rng.integers(2, 7, size=4)]
    nodes = [conv("stem", "input", 6, 3), unary("stem_act", "relu", "stem"),
             conv("b1", "stem_act", b[0], 1), unary("b1_act", "relu", "b1"),
             conv("b3_reduce", "stem_act", 4, 1), unary("b3_reduce_act", "relu", "b3_reduce"),
             conv("b3", "b3_reduce_act", b[1], 3), unary("b3_act", "relu", "b3"),
             conv("b5_reduce", "stem_act", 3, 1), unary("b5_reduce_act", "tanh", "b5_reduce"),
             conv("b5", "b5_reduce_act", b[2], 5), unary("b5_act", "relu", "b5"),
             conv("bx", "b3_reduce_act", b[3], 1),
             {"id": "mixed", "type": "concat", "inputs": ["b1_act", "b3_act", "b5_act", "bx"]},
             conv("p1", "mixed", 5, 1), conv("p2", "mixed", 5, 3), conv("p3", "stem_act", 5, 1),
             {"id": "sum", "type": "add", "inputs": ["p1", "p2", "p3"]}, unary("sum_act", "relu", "sum"),
             unary("flatten", "flatten", "sum_act"),
             {"id": "fc", "type": "dense", "inputs": ["flatten"], "out_features": 6}]
    return {"name": "inception_style", "input": [9, 9, 2], "output": "fc", "nodes": nodes}


def mobilenet_style(rng):
    """Two MobileNetV3-style inverted residual blocks: a 1x1 expansion with
    relu6, a depthwise 3x3 (the second with stride 2, a channel multiplier of
    2 and dilation 2), squeeze-and-excitation (global average pooling, 1x1
    convolutions, hardsigmoid, a broadcast mul), a 1x1 projection, hardswish,
    and an identity shortcut around the first block."""
    c, e = int(rng.integers(4, 7)), int(rng.integers(8, 13))
    nodes = [conv("stem", "input", c, 3), unary("stem_bn", "batchnorm", "stem"), unary("stem_act", "hardswish", "stem_bn"),
             conv("b1.expand", "stem_act", e, 1), unary("b1.expand_bn", "batchnorm", "b1.expand"),
             unary("b1.expand_act", "relu6", "b1.expand_bn"),
             conv("b1.dw", "b1.expand_act", e, 3, groups=e), unary("b1.dw_bn", "batchnorm", "b1.dw"),
             unary("b1.dw_act", "relu6", "b1.dw_bn"),
             unary("b1.se.pool", "global_avgpool", "b1.dw_act"), conv("b1.se.fc1", "b1.se.pool", 3, 1),
             unary("b1.se.act", "relu", "b1.se.fc1"), conv("b1.se.fc2", "b1.se.act", e, 1),
             unary("b1.se.gate", "hardsigmoid", "b1.se.fc2"),
             {"id": "b1.se.scale", "type": "mul", "inputs": ["b1.dw_act", "b1.se.gate"]},
             conv("b1.project", "b1.se.scale", c, 1), unary("b1.project_bn", "batchnorm", "b1.project"),
             {"id": "b1.add", "type": "add", "inputs": ["b1.project_bn", "stem_act"]},
             conv("b2.dw", "b1.add", 2 * c, 3, stride=2, padding=2, groups=c, dilation=2),
             unary("b2.dw_bn", "batchnorm", "b2.dw"), unary("b2.dw_act", "hardswish", "b2.dw_bn"),
             conv("b2.project", "b2.dw_act", 8, 1), unary("b2.project_bn", "batchnorm", "b2.project"),
             unary("pool", "global_avgpool", "b2.project_bn"), unary("flatten", "flatten", "pool"),
             {"id": "fc", "type": "dense", "inputs": ["flatten"], "out_features": 5}]
    return {"name": "mobilenet_style", "input": [11, 11, 3], "output": "fc", "nodes": nodes}


def vit_style(rng):
    """A vision transformer: patch embedding, class token, position
    embedding, two pre-norm blocks (layernorm, multi-head self-attention,
    residual add, layernorm, dense, gelu, dense, add), a final layernorm, the
    class token or the mean over tokens, and a dense head."""
    heads = int(rng.integers(1, 4))
    dim = heads * int(rng.integers(2, 5))
    nodes = [{"id": "patch_embed", "type": "patch_embed", "inputs": ["input"], "dim": dim, "patch": 3},
             unary("class_token", "class_token", "patch_embed"), unary("pos_embed", "position_embedding", "class_token")]
    x = "pos_embed"
    for b in range(2):
        p = f"blocks.{b}."
        nodes += [unary(p + "norm1", "layernorm", x), unary(p + "attn", "attention", p + "norm1", heads=heads),
                  {"id": p + "add1", "type": "add", "inputs": [p + "attn", x]},
                  unary(p + "norm2", "layernorm", p + "add1"),
                  unary(p + "mlp.0", "dense", p + "norm2", out_features=2 * dim),
                  unary(p + "mlp.1", "gelu", p + "mlp.0", approximate="tanh" if b else "none"),
                  unary(p + "mlp.2", "dense", p + "mlp.1", out_features=dim),
                  {"id": p + "add2", "type": "add", "inputs": [p + "mlp.2", p + "add1"]}]
        x = p + "add2"
    pool = unary("pool", "select_token", "norm") if rng.integers(0, 2) else unary("pool", "mean_tokens", "norm")
    nodes += [unary("norm", "layernorm", x), pool, {"id": "head", "type": "dense", "inputs": ["pool"], "out_features": 5}]
    return {"name": "vit_style", "input": [9, 12, 2], "output": "head", "nodes": nodes}


CASES = {"resnet_style": resnet_style, "inception_style": inception_style, "mobilenet_style": mobilenet_style,
         "vit_style": vit_style}

# The kinks of the piecewise activations: decisions float32 rounding may flip.
KINKS = {torch.nn.ReLU: [0.0], torch.nn.ReLU6: [0.0, 6.0], torch.nn.Hardswish: [-3.0, 3.0],
         torch.nn.Hardsigmoid: [-3.0, 3.0]}


def randomize_statistics(model, gen):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                sign = torch.where(torch.rand(c, generator=gen) < 0.3, -1.0, 1.0)
                m.weight.copy_(sign * (0.5 + torch.rand(c, generator=gen)))
                m.bias.copy_(torch.rand(c, generator=gen) - 0.5)
                m.running_mean.copy_(0.3 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.3 + 1.7 * torch.rand(c, generator=gen))
                m.num_batches_tracked.fill_(int(torch.randint(1, 1000, (1,), generator=gen)))
            elif isinstance(m, (torch.nn.LayerNorm, torch.nn.MultiheadAttention)):
                # PyTorch starts these at 1 and 0: random values check every term.
                for name, t in m.named_parameters(recurse=False):
                    t.copy_((0.5 + torch.rand(t.shape, generator=gen)) if name == "weight" else
                            torch.rand(t.shape, generator=gen) - 0.5 if "bias" in name else t)
                if isinstance(m, torch.nn.MultiheadAttention):
                    m.out_proj.bias.copy_(torch.rand(m.out_proj.bias.shape, generator=gen) - 0.5)


def smooth_images(rng, n, h, w, c):
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    out = np.zeros((n, h, w, c))
    for i in range(n):
        for k in range(c):
            for _ in range(3):
                fy, fx, ph = rng.uniform(0.5, 2.5), rng.uniform(0.5, 2.5), rng.uniform(0, 2 * np.pi)
                out[i, :, :, k] += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * (fy * yy + fx * xx) + ph)
    return out.astype(np.float32)


def kink_margin(model, x):
    """The closest any piecewise activation's input comes to one of its
    kinks, relative to the largest magnitude at its node."""
    inputs = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: inputs.append((type(mod), inp[0].detach())))
             for m in model.modules() if type(m) in KINKS]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    margin = np.inf
    for kind, z in inputs:
        scale = z.abs().max().item()
        for k in KINKS[kind]:
            margin = min(margin, (z - k).abs().min().item() / scale)
    return margin


def check_case(name, arch, args, rng, gen, backends):
    model = GraphNet(arch)
    randomize_statistics(model, gen)
    path = os.path.join(args.workdir, f"{name}.safetensors")
    write_safetensors(path, model.state_dict(), {"format": "pt", "architecture": json.dumps(arch)})
    torch_model, _ = load_model(path)  # read back on its own, strict names and shapes
    torch_model = torch_model.double().eval()

    batch, redrawn = 4, 0
    while True:
        x = smooth_images(rng, batch, *arch["input"])
        margin = kink_margin(torch_model, to_torch_input(x).double())
        if margin > KINK_MARGIN:
            break
        redrawn += 1
        if redrawn > 60:
            sys.exit(f"{name}: could not draw inputs away from the ReLU decisions")
    outputs = torch_model(to_torch_input(x).double()).shape[1]
    targets = rng.integers(0, outputs, size=batch)
    xt = to_torch_input(x).double().requires_grad_(True)
    logits = torch_model(xt)
    logits.gather(1, torch.from_numpy(targets).view(-1, 1)).sum().backward()
    want_logits = logits.detach().numpy()
    want_grad = to_nhwc(xt.grad.detach())

    input_path = os.path.join(args.workdir, f"{name}_input.f32")
    x.astype("<f4").tofile(input_path)
    ok = True
    print(f"{name}: {len(arch['nodes'])} nodes; smallest distance to a kink {margin:.2e} of the node's largest "
          f"value ({redrawn} batch(es) redrawn)")
    for backend in backends:
        out_path = os.path.join(args.workdir, f"{name}_{backend}.json")
        subprocess.run([args.dump, path, input_path, str(batch), ",".join(map(str, targets)), out_path, backend],
                       check=True)
        got = json.load(open(out_path))
        for what, want, have in [("logits", want_logits, got["logits"]), ("input gradient", want_grad, got["grad"])]:
            have = np.asarray(have, dtype=np.float64).reshape(want.shape)
            scale = np.abs(want).max()
            err = np.abs(have - want).max() / scale
            good = err <= TOLERANCE
            ok &= good
            print(f"  {backend:9s} {what}: max |igscope - torch| = {err:.2e} of the largest magnitude {scale:.3g} "
                  f"({'ok' if good else 'FAIL'}, tolerance {TOLERANCE:g})")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--repeats", type=int, default=2, help="random graphs of each kind")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    listed = subprocess.run([args.dump, "--backends"], check=True, capture_output=True, text=True).stdout
    backends = [b.strip() for b in listed.split(",") if b.strip() and b.strip() != "cuda"]
    ok = True
    for name, make in CASES.items():
        for r in range(args.repeats):
            ok &= check_case(f"{name}_{r}", make(rng), args, rng, gen, backends)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
