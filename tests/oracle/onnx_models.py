#!/usr/bin/python3
"""The ONNX test set for `igscope import MODEL.onnx --out MODEL.safetensors`.

Builds, from PyTorch modules with seeded random weights (nothing is
downloaded), a directory of ONNX files that the importer's tests read, and a
manifest.json describing them:

* torchvision architectures, num_classes=10, 3 channels, at sizes 64 and 224:
  resnet18, mobilenet_v2, densenet121, efficientnet_b0 and googlenet
  (aux_logits=False, transform_input=False, init_weights=True). They cover the
  operators real image classifiers export to: conv + batch norm (folded by the
  export), residual adds, depthwise convs, Clip (ReLU6), SiLU as Sigmoid * x,
  squeeze-excitation, channel concats, pooling with padding.
* keras_style: 28x28 grey, the CNN a Keras user writes (conv 3x3 32, conv 3x3
  64, max-pool 2, dropout, flatten, dense 128, dropout, dense 10).
* small_mixed: 28x28 grey, a small CNN exercising the rest of what the
  importer accepts: Pad (asymmetric, from nn.ZeroPad2d) before a stride-2
  conv, batch norms that cannot be folded into a conv (after a concat and
  after a max-pool), LeakyReLU, AveragePool with padding and
  count_include_pad=False, Clip (ReLU6), HardSwish (HardSigmoid * x at opset
  13), Sigmoid, Tanh, Concat, a residual Add, Mul and Add by constants, GELU
  (the Erf pattern below opset 20), global average pooling, Flatten and Gemm.
* unsupported models, for the importer's error messages (opset 13 only, not
  for numerics): lstm_tiny (an nn.LSTM over the image rows) and torchvision's
  shufflenet_v2_x0_5 at 64 (channel shuffle). Their manifest entries carry
  "unsupported": the op type of the first node (in graph order) that the
  importer's documented rules refuse, and "unsupported_ops": every op type
  of the file outside the supported list.

Each model is exported at opsets 13 and 17 (unless --opsets says otherwise)
with torch.onnx.export(..., do_constant_folding=True), a dynamic batch axis,
input "input" and output "logits". Shape arithmetic on constants that the
exporter leaves unfolded (the pads of nn.ZeroPad2d: ConstantOfShape, Slice,
Transpose, Cast, ...) is then folded into Constant nodes here, as ONNX
simplifiers do, and the entry lists the op types folded away in "folded"
(the unsupported models are kept as exported). The exported graph is the
bare module: the input normalisation is NOT in the file; the manifest gives
it ("input_range", "mean", "std": x_model = (x_raw - mean) / std per
channel, mean and std in the units of the input range) and the importer
puts it in front from --mean/--std.

Every BatchNorm gets random running statistics and affine parameters (so that
the folding of batch norms by the export, and the unfoldable ones, really
change the numbers), drawn from the model's seed and calibrated on a seeded
batch of images at the input size (see randomize_batchnorms: without that,
the deeper random networks lose almost all dependence on their input). Each
model has a fixed seed, so every run writes the same files, byte for byte.
The oracle scripts rebuild the exact exported module with
build_torch_model(name, seed, size, channels) and wrap it with
normalized(model, mean, std, input_range) (model_for_entry does both for a
manifest entry).

Usage:
    onnx_models.py --out DIR [--only NAME,...] [--sizes 64,224] [--opsets 13,17]
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn

# name -> the seed of its weights, input channels, input sizes (None: those
# of --sizes), the input normalisation, and for the unsupported models, that
# they are for the refusal tests.
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TORCHVISION = ["resnet18", "mobilenet_v2", "densenet121", "efficientnet_b0", "googlenet"]
_RGB = {"channels": 3, "sizes": None, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
_GREY = {"channels": 1, "sizes": [28], "mean": [0.0], "std": [1.0]}
MODELS = {
    "resnet18": dict(_RGB, seed=1801),
    "mobilenet_v2": dict(_RGB, seed=1802),
    "densenet121": dict(_RGB, seed=1803),
    "efficientnet_b0": dict(_RGB, seed=1804),
    "googlenet": dict(_RGB, seed=1805),
    "keras_style": dict(_GREY, seed=2801),
    "small_mixed": dict(_GREY, seed=2802, mean=[0.2860], std=[0.3530]),  # Fashion-MNIST's
    "lstm_tiny": dict(_GREY, seed=3801, unsupported=True),
    "shufflenet_v2_x0_5": dict(_RGB, seed=3802, sizes=[64], unsupported=True),
}
CLASSES = 10
INPUT_RANGE = "0:1"
UNSUPPORTED_OPSETS = (13,)
DUMMY_BATCH = 2

# The operators `igscope import` accepts (Erf only inside the GELU pattern,
# Reshape only to [N, -1]); anything else is refused.
SUPPORTED_OPS = {
    "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
    "Erf", "Mul", "Add", "Sub", "Div", "Concat", "MaxPool", "AveragePool", "GlobalAveragePool", "Pad", "Flatten",
    "Reshape", "Gemm", "MatMul", "Dropout", "Identity", "Constant", "Softmax",
}


# --------------------------------------------------------------------------
# The hand-written models

class KerasStyle(nn.Module):
    """The 28x28 grey CNN of the Keras MNIST example."""

    def __init__(self, channels=1, classes=CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 3)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.drop1 = nn.Dropout(0.25)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64 * 12 * 12, 128)
        self.relu3 = nn.ReLU()
        self.drop2 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
        x = self.flatten(self.drop1(x))
        return self.fc2(self.drop2(self.relu3(self.fc1(x))))


class SmallMixed(nn.Module):
    """A 28x28 grey CNN touching every operator (and pattern) the importer claims.

    Shapes: 1x28x28 -pad(1,2,1,2)-> 1x31x31 -conv s2-> 16x15x15 -> concat of a
    ReLU6 branch (16) and a Hardswish branch (8) -> 24x15x15 -> BN (after the
    concat: not foldable) -> *0.5 + 0.25 -> AvgPool 3/2 pad 1 (padding not
    counted) -> 24x8x8 -> residual block (conv+BN folded, Sigmoid; Add) -> Tanh
    -> MaxPool 2 -> 24x4x4 -> BN (after the pool: not foldable) -> GELU ->
    global average pool -> flatten -> Linear.
    """

    def __init__(self, channels=1, classes=CLASSES):
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 2, 1, 2))  # left, right, top, bottom
        self.conv1 = nn.Conv2d(channels, 16, 3, stride=2)
        self.leaky = nn.LeakyReLU(0.1)
        self.branch_a = nn.Conv2d(16, 16, 3, padding=1)
        self.relu6 = nn.ReLU6()
        self.branch_b = nn.Conv2d(16, 8, 1)
        self.hardswish = nn.Hardswish()
        self.bn_concat = nn.BatchNorm2d(24)
        self.avgpool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.res_conv = nn.Conv2d(24, 24, 3, padding=1)
        self.res_bn = nn.BatchNorm2d(24)
        self.sigmoid = nn.Sigmoid()
        self.tanh = nn.Tanh()
        self.maxpool = nn.MaxPool2d(2)
        self.bn_pool = nn.BatchNorm2d(24)
        self.gelu = nn.GELU()
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(24, classes)

    def forward(self, x):
        x = self.leaky(self.conv1(self.pad(x)))
        x = torch.cat([self.relu6(self.branch_a(x)), self.hardswish(self.branch_b(x))], dim=1)
        x = self.bn_concat(x) * 0.5 + 0.25
        x = self.avgpool(x)
        x = self.tanh(x + self.sigmoid(self.res_bn(self.res_conv(x))))
        x = self.gelu(self.bn_pool(self.maxpool(x)))
        return self.fc(self.flatten(self.gap(x)))


class LstmTiny(nn.Module):
    """An LSTM reading the image's rows as a sequence (for the refusal tests)."""

    def __init__(self, channels=1, size=28, hidden=16, classes=CLASSES):
        super().__init__()
        self.channels, self.size = channels, size
        self.lstm = nn.LSTM(channels * size, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, classes)

    def forward(self, x):
        if self.channels > 1:
            x = x.permute(0, 2, 1, 3)
        seq = x.reshape(-1, self.size, self.channels * self.size)  # [N, rows, C*cols]
        out, _ = self.lstm(seq)
        return self.fc(out[:, -1])


# --------------------------------------------------------------------------
# Construction

def calibration_batch(seed, channels, size, mean, std):
    """16 seeded images, normalised as the model sees them: 4 smooth (bilinear
    upsampling of 8x8 noise) and 4 of uniform pixel noise, in [0, 1], and the
    same 8 scaled by random factors in [0, 1] (points on the integrated
    gradients path from a black baseline)."""
    g = torch.Generator().manual_seed(seed)
    smooth = nn.functional.interpolate(torch.rand(4, channels, 8, 8, generator=g), size=(size, size),
                                       mode="bilinear", align_corners=False)
    raw = torch.cat([smooth, torch.rand(4, channels, size, size, generator=g)])
    raw = torch.cat([raw, raw * torch.rand(8, 1, 1, 1, generator=g)])
    return (raw - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


def randomize_batchnorms(model, seed, calibration=None):
    """Random statistics and affine parameters for every BatchNorm, drawn in
    module order from `seed`: weight uniform 0.5..1.5, bias normal (std 0.1),
    running_mean m + s * z with z normal (std 0.1) and running_var s^2 * f
    with f uniform 0.5..2, where m and s^2 are the channel's mean and
    variance over the `calibration` batch (m = 0 and s = 1 without one).

    Calibrating keeps each batch norm's output near unit scale, as in a
    trained network: with data-free statistics the input-dependent part of
    the signal shrinks layer after layer in the deeper torchvision models (in
    mobilenet_v2, efficientnet_b0 and googlenet the logits then vary across
    inputs by about 1e-8 and the input gradients are about 1e-13, nothing a
    gradient test can check), and statistics calibrated at another input
    size make efficientnet_b0 ill-conditioned (float32 gradients off by 1e-2).
    The calibration pass runs in float64 on one thread, so the float32
    statistics are the same on every run."""
    g = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    draws = {}
    with torch.no_grad():
        for m in norms:
            n = m.num_features
            z = torch.randn(n, generator=g, dtype=torch.float64) * 0.1
            f = torch.rand(n, generator=g, dtype=torch.float64) * 1.5 + 0.5
            if m.affine:
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_mean.copy_(z)
            m.running_var.copy_(f)
            draws[m] = (z, f)
    if calibration is None or not norms:
        return

    def set_statistics(m, inputs):
        x = inputs[0]
        dims = [d for d in range(x.dim()) if d != 1]
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
        var = torch.clamp(var, min=1e-2 * float(var.mean()) + 1e-12)  # dead channels: no huge gains
        z, f = draws.pop(m)
        m.running_mean.copy_(mean + var.sqrt() * z)
        m.running_var.copy_(var * f)

    threads = torch.get_num_threads()
    hooks = [m.register_forward_pre_hook(set_statistics) for m in norms]
    try:
        torch.set_num_threads(1)
        with torch.no_grad():
            model.double().eval()(calibration.double())
    finally:
        for h in hooks:
            h.remove()
        model.float()
        torch.set_num_threads(threads)
    if draws:
        raise RuntimeError("the calibration pass did not reach %d batch norm(s)" % len(draws))


def _construct(name, channels, size):
    import torchvision.models as tvm

    if name == "googlenet":
        return tvm.googlenet(weights=None, num_classes=CLASSES, aux_logits=False, transform_input=False,
                             init_weights=True)
    if name in TORCHVISION or name == "shufflenet_v2_x0_5":
        return getattr(tvm, name)(weights=None, num_classes=CLASSES)
    if name == "keras_style":
        return KerasStyle(channels)
    if name == "small_mixed":
        return SmallMixed(channels)
    if name == "lstm_tiny":
        return LstmTiny(channels, size)
    raise ValueError("unknown model '%s' (known: %s)" % (name, ", ".join(MODELS)))


def build_torch_model(name, seed, size, channels):
    """The module exported as `name` (eval mode, the exact weights of the ONNX
    file; the bare model, without the input normalisation), for inputs of
    `channels` x `size` x `size`. The weights depend on `seed`, and the batch
    norms' statistics also on `size` (they are calibrated at that size)."""
    spec = MODELS.get(name)
    if spec is None:
        raise ValueError("unknown model '%s' (known: %s)" % (name, ", ".join(MODELS)))
    if channels != spec["channels"]:
        raise ValueError("model '%s' takes %d channels, not %d" % (name, spec["channels"], channels))
    if spec["sizes"] is not None and size not in spec["sizes"]:
        raise ValueError("model '%s' is built at size %s, not %d" % (name, spec["sizes"], size))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = _construct(name, channels, size)
    calibration = calibration_batch(seed + 2, channels, size, spec["mean"], spec["std"])
    randomize_batchnorms(model, seed + 1, calibration)
    return model.eval()


def parse_input_range(input_range):
    lo, sep, hi = input_range.partition(":")
    try:
        lo, hi = float(lo), float(hi)
    except ValueError:
        lo = hi = None
    if not sep or lo is None or not lo < hi:
        raise ValueError("input_range '%s' is not LOW:HIGH with LOW < HIGH" % input_range)
    return lo, hi


class Normalized(nn.Module):
    """Raw pixels in the input range's units -> (x - mean) / std per channel -> model."""

    def __init__(self, model, mean, std, input_range):
        super().__init__()
        if len(mean) != len(std):
            raise ValueError("mean has %d values, std %d" % (len(mean), len(std)))
        if any(s <= 0 for s in std):
            raise ValueError("std must be positive, got %s" % (std,))
        self.range = parse_input_range(input_range)
        self.model = model
        self.mean, self.std = [float(v) for v in mean], [float(v) for v in std]

    def forward(self, x):
        if x.shape[1] != len(self.mean):
            raise ValueError("input has %d channels, the normalisation %d" % (x.shape[1], len(self.mean)))
        # Made in the input's dtype from the Python floats: exact in float64 too.
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return self.model((x - mean) / std)


def normalized(model, mean, std, input_range):
    """A module taking raw pixels in the units of `input_range` ("0:1": pixels
    in [0, 1]) that applies (x - mean) / std per channel (mean and std in the
    same units) and calls `model`. Keeps the model's mode (eval)."""
    return Normalized(model, mean, std, input_range).train(model.training)


def model_for_entry(entry):
    """normalized(build_torch_model(...)) for a manifest entry."""
    model = build_torch_model(entry["model"], entry["seed"], entry["size"], entry["channels"])
    return normalized(model, entry["mean"], entry["std"], entry["input_range"])


def load_manifest(directory):
    """The list of entries of DIR/manifest.json."""
    with open(os.path.join(directory, "manifest.json")) as f:
        return json.load(f)


# --------------------------------------------------------------------------
# What the importer will refuse

def _constants(model):
    """name -> numpy value of the initializers and Constant nodes' outputs."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _is_gelu_erf(node, producers, consumers, constants):
    """Erf in the pattern 0.5 * x * (1 + erf(x / sqrt(2))) (any operand order)."""
    def scalar(name, value):
        v = constants.get(name)
        return v is not None and v.size == 1 and abs(float(v.reshape(-1)[0]) - value) < 1e-4

    div = producers.get(node.input[0])
    if div is None or not ((div.op_type == "Div" and scalar(div.input[1], math.sqrt(2.0))) or
                           (div.op_type == "Mul" and scalar(div.input[1], 1 / math.sqrt(2.0)))):
        return False
    x = div.input[0]
    adds = consumers.get(node.output[0], [])
    if len(adds) != 1 or adds[0].op_type != "Add" or not any(scalar(i, 1.0) for i in adds[0].input):
        return False
    muls = consumers.get(adds[0].output[0], [])
    return len(muls) == 1 and muls[0].op_type == "Mul" and x in muls[0].input


def _is_flatten_reshape(node, constants, shapes):
    """Reshape to [N, -1]: a constant 2-element shape keeping the batch axis."""
    shape = constants.get(node.input[1])
    if shape is None or shape.size != 2:
        return False
    a, b = (int(v) for v in shape.reshape(-1))
    if b == -1:
        return a != -1
    if a in (0, -1):
        dims = shapes.get(node.input[0])
        return dims is not None and all(d > 0 for d in dims[1:]) and b == math.prod(dims[1:])
    return False


def refused_ops(model):
    """(the op type of the first node the importer's rules refuse, or None;
    the op types outside the supported list, in graph order)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in dims]
    constants = _constants(model)
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    first, outside = None, []
    for node in model.graph.node:
        if node.op_type not in SUPPORTED_OPS:
            ok = False
            if node.op_type not in outside:
                outside.append(node.op_type)
        elif node.op_type == "Erf":
            ok = _is_gelu_erf(node, producers, consumers, constants)
        elif node.op_type == "Reshape":
            ok = _is_flatten_reshape(node, constants, shapes)
        else:
            ok = True
        if not ok and first is None:
            first = node.op_type
    return first, outside


# --------------------------------------------------------------------------
# Constant folding after the export

# Shape arithmetic that torch's exporter leaves unfolded on constants: for
# nn.ZeroPad2d (any constant pad, opset >= 11) torch 1.13 writes the pads as
# ConstantOfShape -> Concat -> Reshape -> Slice -> Transpose -> Reshape -> Cast
# of Constant nodes, since its own folding pass skips ConstantOfShape.
FOLDABLE_OPS = {"ConstantOfShape", "Concat", "Reshape", "Slice", "Transpose", "Cast", "Unsqueeze", "Squeeze",
                "Gather", "Add", "Sub", "Mul", "Div"}


def _np_dtype(onnx_type):
    import onnx

    if hasattr(onnx.helper, "tensor_dtype_to_np_dtype"):
        return onnx.helper.tensor_dtype_to_np_dtype(onnx_type)
    return onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[onnx_type]


def _evaluate(node, args):
    """The output of a FOLDABLE_OPS node on numpy inputs (opset 13..17 forms)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type
    if op == "ConstantOfShape":
        value = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
        return np.full([int(d) for d in args[0]], value.reshape(-1)[0], dtype=value.dtype)
    if op == "Concat":
        return np.concatenate(args, axis=attrs["axis"])
    if op == "Reshape":
        shape = [int(d) for d in args[1]]
        if not attrs.get("allowzero", 0):
            shape = [args[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return args[0].reshape(shape)
    if op == "Slice":
        data = args[0]
        axes = [int(a) for a in args[3]] if len(args) > 3 and args[3] is not None else list(range(len(args[1])))
        steps = [int(a) for a in args[4]] if len(args) > 4 and args[4] is not None else [1] * len(axes)
        index = [slice(None)] * data.ndim
        for start, end, axis, step in zip(args[1], args[2], axes, steps):
            index[axis] = slice(int(start), int(end), step)
        return data[tuple(index)]
    if op == "Transpose":
        return np.transpose(args[0], attrs.get("perm"))
    if op == "Cast":
        return args[0].astype(_np_dtype(attrs["to"]))
    if op == "Unsqueeze":
        out = args[0]
        for axis in sorted(int(a) % (out.ndim + len(args[1])) for a in args[1]):
            out = np.expand_dims(out, axis)
        return out
    if op == "Squeeze":
        return np.squeeze(args[0], axis=tuple(int(a) for a in args[1]) if len(args) > 1 else None)
    if op == "Gather":
        return np.take(args[0], args[1], axis=attrs.get("axis", 0))
    if op in ("Add", "Sub", "Mul"):
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](args[0], args[1]).astype(args[0].dtype)
    if op == "Div":
        if np.issubdtype(args[0].dtype, np.integer):
            return (args[0] // args[1]).astype(args[0].dtype)
        return (args[0] / args[1]).astype(args[0].dtype)
    raise ValueError(op)


def fold_constants(model):
    """Replaces every FOLDABLE_OPS node whose inputs are all constants by a
    Constant node of its value, drops the nodes left unused, and returns the
    op types folded away (sorted), e.g. the pads subgraph of nn.ZeroPad2d."""
    import onnx
    from onnx import numpy_helper

    constants = _constants(model)
    folded, nodes = set(), []
    for node in model.graph.node:
        inputs = [i for i in node.input if i]
        if (node.op_type in FOLDABLE_OPS and len(node.output) == 1 and inputs and
                all(i in constants for i in inputs)):
            args = [constants[i] if i else None for i in node.input]
            value = _evaluate(node, args)
            constants[node.output[0]] = value
            folded.add(node.op_type)
            node = onnx.helper.make_node("Constant", [], [node.output[0]], name=node.name,
                                         value=numpy_helper.from_array(value))
        nodes.append(node)
    # Drop the nodes none of whose outputs are used any more, last to first.
    used = {o.name for o in model.graph.output}
    kept = []
    for node in reversed(nodes):
        if any(o in used for o in node.output):
            kept.append(node)
            used.update(node.input)
    del model.graph.node[:]
    model.graph.node.extend(reversed(kept))
    return sorted(folded)


# --------------------------------------------------------------------------
# Export

def export(model, path, opset, channels, size, seed):
    g = torch.Generator().manual_seed(seed)
    dummy = torch.rand(DUMMY_BATCH, channels, size, size, generator=g)
    torch.onnx.export(model, dummy, path, opset_version=opset, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)


def plan(only=None, sizes=(64, 224), opsets=(13, 17)):
    """The (name, opset, size) triples to build."""
    names = list(MODELS)
    if only:
        unknown = [n for n in only if n not in MODELS]
        if unknown:
            raise ValueError("unknown model(s) %s (known: %s)" % (", ".join(unknown), ", ".join(MODELS)))
        names = [n for n in names if n in only]
    out = []
    for name in names:
        spec = MODELS[name]
        model_opsets = UNSUPPORTED_OPSETS if spec.get("unsupported") else opsets
        for opset in model_opsets:
            for size in (spec["sizes"] if spec["sizes"] is not None else sizes):
                out.append((name, int(opset), int(size)))
    return out


def build(out_dir, only=None, sizes=(64, 224), opsets=(13, 17), verbose=False):
    """Exports the test set into out_dir and writes out_dir/manifest.json;
    returns the manifest's entries."""
    import warnings

    import onnx

    os.makedirs(out_dir, exist_ok=True)
    entries, models = [], {}  # models: (name, size) -> module, for the model being exported
    for name, opset, size in plan(only, sizes, opsets):
        spec = MODELS[name]
        t0 = time.time()
        if (name, size) not in models:
            models = {k: v for k, v in models.items() if k[0] == name}
            models[name, size] = build_torch_model(name, spec["seed"], size, spec["channels"])
        model = models[name, size]
        filename = "%s_op%d_%d.onnx" % (name, opset, size)
        path = os.path.join(out_dir, filename)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export(model, path, opset, spec["channels"], size, spec["seed"])
        exported = onnx.load(path)
        folded = [] if spec.get("unsupported") else fold_constants(exported)
        onnx.checker.check_model(exported)
        if folded:
            onnx.save(exported, path)
        entry = {"file": filename, "model": name, "opset": opset, "size": size, "channels": spec["channels"],
                 "input_range": INPUT_RANGE, "mean": list(spec["mean"]), "std": list(spec["std"]),
                 "classes": CLASSES, "seed": spec["seed"]}
        if folded:
            entry["folded"] = folded
        if spec.get("unsupported"):
            first, outside = refused_ops(exported)
            if first is None:
                raise RuntimeError("%s: expected an operator the importer refuses, found none" % filename)
            entry["unsupported"] = first
            entry["unsupported_ops"] = outside
        entries.append(entry)
        if verbose:
            print("%-34s %7.1f s %9.1f KiB" % (filename, time.time() - t0, os.path.getsize(path) / 1024.0),
                  flush=True)
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        f.write("[\n" + ",\n".join(" " + json.dumps(e) for e in entries) + "\n]\n")  # an entry a line
    return entries


def _int_list(text):
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError("'%s' is not a comma-separated list of integers" % text)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="directory to write the ONNX files and manifest.json into")
    p.add_argument("--only", help="comma-separated model names (default: all of %s)" % ", ".join(MODELS))
    p.add_argument("--sizes", type=_int_list, default=[64, 224], help="input sizes of the torchvision models")
    p.add_argument("--opsets", type=_int_list, default=[13, 17], help="opsets to export at")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    t0 = time.time()
    try:
        entries = build(args.out, only, args.sizes, args.opsets, verbose=True)
    except ValueError as e:
        print("error: %s" % e, file=sys.stderr)
        return 2
    total = sum(os.path.getsize(os.path.join(args.out, e["file"])) for e in entries)
    print("%d files, %.1f MiB, %.1f s; manifest: %s" % (len(entries), total / 2**20, time.time() - t0,
                                                        os.path.join(args.out, "manifest.json")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
