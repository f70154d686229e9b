"""Which ReLU and max-pool decisions float32 rounding can flip, and how much
each flip may change an oracle's result.

Two correct float32 implementations (PyTorch, igscope's reference, AVX2,
AVX-512, simd128 and Winograd kernels) sum in different orders. At a point
where a pre-activation is within rounding of 0, or two max-pool inputs are
within rounding of each other, they may take different branches, and the
gradient there differs by a whole unit's contribution: far more than any
tolerance meant for rounding. Such a difference says nothing about the math,
so the oracles allow exactly it, and nothing else:

1. The float64 forward pass carries, for every value v, a rounding scale
   e(v): how far a float32 evaluation of the same network typically is from
   it, each float32 operation's rounding taken as an independent error of at
   most u = 2^-24 of its result. A sum of n products p_i in any order is then
   off by about u sqrt(n) ||p||_2, and errors of the inputs add in quadrature:
     input points    e = 2u (|x'| + |x - x'|)          (x' + alpha (x - x') in float32)
     conv / dense    e(z)^2 = W^2 e(a)^2 + n u^2 (W^2 a^2 + b^2)    (n: fan-in)
     ReLU, SmeLU     e(a) = e(z) (slope <= 1), or 0 where the output is
                     exactly 0 beyond the margin (z <= -T e(z); SmeLU: z <= -beta - T e(z))
     max-pool        e = the largest e in the window (padding, and ceil_mode's windows
                     overhanging the input, as -inf inputs: they never win and carry no e)
     batchnorm       (evaluation: the affine map y = s x + c per channel or feature,
                     s = weight / sqrt(running_var + eps), c = bias - running_mean s)
                     e(y)^2 = s^2 e(x)^2 + 2 u^2 (s^2 x^2 + c^2) + u^2 (s^2 x^2 + (|bias| + |running_mean s|)^2):
                     s x + c as a dense layer of fan-in 2 over the products (s x, c), and
                     s and c themselves rounded to float32 once each (igscope derives them in
                     double; PyTorch in float32, where c = bias - mean s rounds at
                     u (|bias| + |mean s|))
     affine          (igscope's affine node, torch_model.Affine: y = s x + c per channel or
                     feature, s and c written in the architecture as doubles, y computed in
                     double and rounded to float32 once; GraphNet's float32 pass does the same)
                     e(y)^2 = s^2 e(x)^2 + u^2 y^2
     pad2d           (nn.ConstantPad2d) e = 0 at the new pixels (the constant is exact), e(x)
                     copied elsewhere
     add             out = a_1 + ... + a_k, summed in the listed order (igscope and GraphNet alike):
                     e^2 = sum e(a_j)^2 + u^2 sum_{j >= 2} P_j^2, P_j = a_1 + ... + a_j the
                     partial sums, each rounded at u of itself; for two inputs u^2 out^2
     concat          e concatenated (a copy rounds nothing)
     mul             out = a b (b possibly [N, C, 1, 1], broadcast):
                     e^2 = (b e(a))^2 + (a e(b))^2 + u^2 (a b)^2 (first order, one rounding)
     average pool    (AvgPool2d with any padding, ceil_mode, count_include_pad and
                     divisor_override; AdaptiveAvgPool2d with windows that tile the input)
                     out = (the sum of the window's n real inputs) / d, d the layer's divisor
                     (kh kw, the window within the padded input, n itself when the padding is
                     not counted, or divisor_override; the padding adds exact zeros): a dense
                     layer of n weights 1/d, so W^2 e^2 summed is S(e^2) / d^2 (S: the window
                     sum) and n u^2 W^2 a^2 summed is n u^2 S(a^2) / d^2; the division rounds at
                     u |out| <= u sqrt(n S(a^2)) / d (Cauchy-Schwarz):
                     e^2 = (S(e^2) + 2 n u^2 S(a^2)) / d^2
                     (for d = n = kh kw: avgpool(e^2) / n + 2 u^2 avgpool(a^2))
     Sigmoid, Tanh,  e(f(z))^2 = (S e(z))^2 + 4 u^2 m(z)^2, S = max |f'| over
     GELU, SiLU      [z - T e(z), z + T e(z)] (a float32 input within T scales of z moves
                     f by at most S times as much: the mean value theorem; found at the
                     interval's ends and the extrema of f' inside it), and up to four
                     roundings of the float32 evaluation (the exp / tanh / erf, within a
                     couple of ulp, and the operations after it), each of u m(z):
                     m = |f(z)|, but |z| for GELU, whose 1 + erf(z / sqrt 2) cancels for
                     z < 0, leaving erf's rounding times z / 2
     LeakyReLU,      piecewise with kinks (below); S = the largest |slope| of the pieces
     ReLU6,          that [z - T e, z + T e] reaches; e = 0 where S = 0 (a flat piece, an
     Hardsigmoid,    exact constant, beyond the margin), else e^2 = (S e(z))^2 + 4 u^2 m(z)^2
     Hardswish       with m = |f(z)| (LeakyReLU), 0 (ReLU6: min and max round nothing),
                     (|z| + 3) / 6 (Hardsigmoid: z + 3, then / 6),
                     |z| min(|z| + 3, 6) / 6 (Hardswish: z + 3, the product, / 6)
   The direction bound t (see DecisionNet.forward) flows alongside: |W| t for
   conv and dense, |s| t for batchnorm and affine, sum t_j for add,
   concatenated for concat, |b| t(a) + |a| t(b) for mul, the pool itself
   (its own divisor) for average pools, S t for the smooth and kinked
   activations, the window maximum for max-pools, 0 at pad2d's new pixels, t
   itself through ReLU and SmeLU (slopes <= 1).
   (`calibration` measures the scale: over 512 path points of fashion_cnn_v1,
   PyTorch's float32 pre-activations, oneDNN's and the BLAS's alike, stay
   within 4.8 e of float64 on Zen 3, and one IG case of fashion_resnet
   within 9.1 e on an AVX-512 Intel Xeon; the IG oracle checks it stays within T / 2 on
   each of its cases, at every node with a rounding model above.)
2. A decision is fragile within T = MARGIN scales of the other branch: a
   ReLU with |z| <= T e(z); a max-pool window whose first maximum m and another
   input v satisfy m - v <= T sqrt(e(m)^2 + e(v)^2), unless m == v exactly in
   float64 (such exact ties come from identical inputs, e.g. a flat
   background; every backend must break them to the first maximum, and the
   oracles hold them to it).
   SmeLU's, Sigmoid's, Tanh's, GELU's and SiLU's derivatives are continuous,
   so they make no decisions. LeakyReLU (kink at 0), ReLU6 (0, 6),
   Hardsigmoid (-3, 3) and Hardswish (-3, 3) have derivatives that jump at
   their kinks: each is a decision like a ReLU's, fragile where |z - kink| <=
   T e(z), between the pieces on either side (the side a value exactly at a
   kink takes is PyTorch's, as igscope's: LeakyReLU and ReLU6 at 0, and
   Hardsigmoid at -3, take the piece below; ReLU6 at 6 and Hardsigmoid at 3
   the piece above; Hardswish the middle piece at both).
3. For each fragile decision at path point k, the quantity under test (an IG
   map, a conductance) is recomputed in float64 with that one decision
   flipped (the ReLU's mask inverted; a kinked activation's unit moved to the
   piece across the kink, its value there the same to first order, its slope
   that piece's; the pool's gradient sent to the other input, whose ReLU,
   when the pool's input node is a ReLU or a channel concat of ReLUs (a
   GoogLeNet pool of inception branches), is then taken as on). The allowance
   is the sum over fragile decisions of |flipped - unflipped| (first order:
   one flip at a time; simultaneous flips interact only at second order). An
   oracle passes when |ours - float64| <= tolerance * scale + allowance,
   element by element.

Models are a torch_model.GraphNet (a graph of nodes: one plan of (node id,
module or merge type, input ids) in topological order, values flowing in a
dict keyed by node id, "input" the model's input) or an nn.Sequential (the
same plan with the layer indices as keys, each layer reading the one
before). Records, flips and `keep` are keyed by these keys.

The flips with the largest bounds (EXACT of them) are recomputed; the others
are bounded together through |J| (DecisionNet.abs_backward: |W| layer after
layer), a bound that grows geometrically with the depth: fine for the
Fashion-MNIST networks and ResNet-18 at 64x64, astronomically loose (1e15 to
1e75 of the quantity) for MobileNetV2, GoogLeNet and DenseNet-121, where an
oracle with more fragile decisions than EXACT says something only through
the recomputed part (`allowance`'s details report it apart).

A wrong sign in a backward pass, a wrong quadrature weight, a tie sent to
the last maximum or fan-out gradients overwritten instead of summed changes
results at stable points too, which no allowance covers, so such bugs still
fail.
"""
import math

import numpy as np
import torch
import torch.nn.functional as tf
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

import torch_model

UNIT_ROUNDOFF = 2.0 ** -24
# Fragile within this many rounding scales: over three times the largest
# deviation measured (4.8 over 512 path points of fashion_cnn_v1 on Zen 3;
# 9.1 on one IG case of fashion_resnet on an AVX-512 Intel Xeon, oneDNN's
# AVX-512 kernels), for kernels that round worse than PyTorch's (Winograd
# transforms, other blockings).
MARGIN = 32.0
# The flips with the largest bounds that `allowance` recomputes; the others
# are bounded (see `allowance`).
EXACT = 256
# Roundings allowed for one float32 evaluation of an elementwise function (see the module doc).
ELEMENTWISE_ROUNDINGS = 4

MERGES = ("add", "concat", "mul")
SMOOTH = (nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU)
KINKED = (nn.LeakyReLU, nn.ReLU6, nn.Hardsigmoid, nn.Hardswish)
SUPPORTED = (nn.Conv2d, nn.Linear, nn.ReLU, torch_model.SmeLU, nn.MaxPool2d, nn.Dropout, nn.Flatten, nn.Softmax,
             nn.LogSoftmax, _BatchNorm, nn.AvgPool2d, nn.AdaptiveAvgPool2d, torch_model.Affine,
             nn.ConstantPad2d) + SMOOTH + KINKED


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def has_decisions(model):
    """Whether any node of the model branches (ReLU, SmeLU, max-pool, the
    kinked activations), so that float32 rounding can flip a decision. A model
    without one (a ViT: layer norm, attention's softmax, GELU) is smooth: its
    float32 results differ from float64 by rounding alone, and the allowance
    is 0 by definition."""
    plan, _ = _plan(model)
    kinds = (nn.ReLU, torch_model.SmeLU, nn.MaxPool2d) + KINKED
    return any(isinstance(op, kinds) for _, op, _ in plan if not isinstance(op, str))


def _plan(model):
    """(plan, output key): plan is a list of (key, module or merge type, input keys) in topological order."""
    if isinstance(model, torch_model.GraphNet):
        plan = [(key, t if t in torch_model.MERGES else model.node(key), list(inputs)) for key, t, inputs in model.plan]
        return plan, model.output
    layers = list(model)
    return [(i, layer, ["input" if i == 0 else i - 1]) for i, layer in enumerate(layers)], len(layers) - 1


def _name(key):
    return f"layer {key}" if isinstance(key, int) else f"node '{key}'"


class _Kinks:
    """A piecewise activation: kinks k_0 < k_1 < ..., piece p between k_{p-1} and k_p, its value
    and slope as functions of z (the slopes affine in z), whether a value exactly at k_j takes
    the piece above it, and m(z), the magnitude its float32 operations round at."""

    def __init__(self, kinks, upper, values, slopes, magnitude):
        self.kinks, self.upper, self.values, self.slopes, self.magnitude = kinks, upper, values, slopes, magnitude

    def piece(self, z):
        p = torch.zeros(z.shape, dtype=torch.long)
        for k, up in zip(self.kinks, self.upper):
            p += (z >= k if up else z > k).long()
        return p

    def value(self, z, piece):
        out = self.values[0](z)
        for p in range(1, len(self.values)):
            out = torch.where(piece == p, self.values[p](z), out)
        return out

    def jump(self, j):
        """|slope above - slope below| at kink j."""
        k = torch.tensor([self.kinks[j]], dtype=torch.float64)
        return float((self.slopes[j + 1](k) - self.slopes[j](k)).abs())

    def slope_bound(self, z, d):
        """The largest |slope| of the pieces that [z - d, z + d] reaches."""
        edges = [-math.inf] + list(self.kinks) + [math.inf]
        lo_all, hi_all = z - d, z + d
        best = torch.zeros_like(z)
        for p, slope in enumerate(self.slopes):
            lo, hi = lo_all.clamp_min(edges[p]), hi_all.clamp_max(edges[p + 1])
            cand = torch.maximum(slope(lo).abs(), slope(hi).abs())
            best = torch.where(lo <= hi, torch.maximum(best, cand), best)
        return best


def _kinks(layer):
    def const(c):
        return lambda z: torch.full_like(z, c)

    if isinstance(layer, nn.LeakyReLU):
        ns = float(layer.negative_slope)
        return _Kinks([0.0], [False], [lambda z: ns * z, lambda z: z], [const(ns), const(1.0)], None)
    if isinstance(layer, nn.ReLU6):
        return _Kinks([0.0, 6.0], [False, True], [lambda z: 0 * z, lambda z: z, lambda z: 0 * z + 6],
                      [const(0.0), const(1.0), const(0.0)], lambda z, f: torch.zeros_like(z))
    if isinstance(layer, nn.Hardsigmoid):
        return _Kinks([-3.0, 3.0], [False, True], [lambda z: 0 * z, lambda z: z / 6 + 0.5, lambda z: 0 * z + 1],
                      [const(0.0), const(1 / 6), const(0.0)], lambda z, f: (z.abs() + 3) / 6)
    # Hardswish: PyTorch's (and igscope's) middle piece holds at -3 and 3.
    return _Kinks([-3.0, 3.0], [True, False], [lambda z: 0 * z, lambda z: z * (z + 3) / 6, lambda z: z],
                  [const(0.0), lambda z: (2 * z + 3) / 6, const(1.0)],
                  lambda z, f: z.abs() * (z.abs() + 3).clamp_max(6) / 6)


def _kink_magnitude(spec, z, f):
    return f.abs() if spec.magnitude is None else spec.magnitude(z, f)


def _derivative(layer, z, order=1):
    with torch.enable_grad():
        zz = z.detach().clone().requires_grad_(True)
        d = torch.autograd.grad(layer(zz).sum(), zz, create_graph=order > 1)[0]
        if order > 1:
            d = torch.autograd.grad(d.sum(), zz)[0]
    return d.detach()


_EXTREMA = {}


def _slope_extrema(layer):
    """The z where f' has its extrema (f'' = 0), found once per function on [-12, 12] (beyond it
    the slopes of these functions are monotone) by a grid and bisection."""
    key = (type(layer).__name__, getattr(layer, "approximate", None))
    if key not in _EXTREMA:
        z = torch.linspace(-12, 12, 24001, dtype=torch.float64)
        d2 = _derivative(layer, z, 2)
        roots = z[d2 == 0].tolist()
        for i in ((d2[:-1] * d2[1:]) < 0).nonzero().flatten().tolist():
            lo, hi = float(z[i]), float(z[i + 1])
            s_lo = float(d2[i])
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                s = float(_derivative(layer, torch.tensor([mid], dtype=torch.float64), 2))
                if (s < 0) == (s_lo < 0):
                    lo, s_lo = mid, s
                else:
                    hi = mid
            roots.append(0.5 * (lo + hi))
        _EXTREMA[key] = sorted(roots)
    return _EXTREMA[key]


def _smooth_slope_bound(layer, z, d):
    """max |f'| over [z - d, z + d]: at the ends and at the extrema of f' inside."""
    best = torch.maximum(_derivative(layer, z - d).abs(), _derivative(layer, z + d).abs())
    for c in _slope_extrema(layer):
        ct = torch.tensor([c], dtype=z.dtype)
        inside = (z - d <= c) & (c <= z + d)
        best = torch.where(inside, torch.maximum(best, _derivative(layer, ct).abs()), best)
    return best


def _avgpool_params(layer, shape):
    """(kernel, stride, padding, ceil_mode) of an average pool on an input [N, C, H, W]."""
    if isinstance(layer, nn.AvgPool2d):
        k = _pair(layer.kernel_size)
        s = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
        return k, s, _pair(layer.padding), bool(layer.ceil_mode)
    h, w = shape[2], shape[3]
    oh, ow = _pair(layer.output_size)
    oh, ow = oh or h, ow or w
    if h % oh or w % ow:
        raise TypeError(f"decisions.py: adaptive average pool to {oh}x{ow} from {h}x{w}: windows that do not tile")
    return (h // oh, w // ow), (h // oh, w // ow), (0, 0), False


def _window_sum(x, k, s, p, ceil_mode):
    """The sum of x over each window of a pool (the padding adds nothing), ceil_mode's windows included."""
    return tf.avg_pool2d(x, k, stride=s, padding=p, ceil_mode=ceil_mode, count_include_pad=False, divisor_override=1)


def _maxpool_params(layer):
    """(kernel, stride, padding, ceil_mode) of a max-pool (dilation 1 only)."""
    if _pair(layer.dilation) != (1, 1):
        raise TypeError("decisions.py: max-pool with dilation")
    k = _pair(layer.kernel_size)
    s = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
    return k, s, _pair(layer.padding), bool(layer.ceil_mode)


def _max_pool(a, params, **kw):
    k, s, p, ceil_mode = params
    return tf.max_pool2d(a, k, s, padding=p, ceil_mode=ceil_mode, **kw)


def _pad_amounts(layer):
    """ConstantPad2d's (left, right, top, bottom), checked nonnegative (igscope's pad2d does not crop)."""
    pads = tuple(int(v) for v in layer.padding)
    if len(pads) != 4 or min(pads) < 0:
        raise TypeError(f"decisions.py: constant padding {pads}: only nonnegative padding of height and width")
    return pads


def _bn_affine(layer, a):
    """s and c of an evaluation-mode batchnorm, shaped to broadcast against a, and
    |bias| + |running_mean s| (what rounding c in float32 is relative to)."""
    if layer.training or layer.running_mean is None:
        raise TypeError("decisions.py: batchnorm in training mode or without running statistics (evaluation only)")
    w = layer.weight if layer.weight is not None else torch.ones_like(layer.running_var)
    b = layer.bias if layer.bias is not None else torch.zeros_like(layer.running_var)
    s = w / torch.sqrt(layer.running_var + layer.eps)
    c = b - layer.running_mean * s
    shape = (1, -1) + (1,) * (a.dim() - 2)
    return s.view(shape), c.view(shape), (b.abs() + (layer.running_mean * s).abs()).view(shape)


class DecisionNet:
    """A float64 model (an nn.Sequential from torch_model.build_sequential, or a
    torch_model.GraphNet) run node by node with rounding scales, decision
    records and optional flipped decisions."""

    def __init__(self, model):
        self.model = model
        self.plan, self.output = _plan(model)
        self.ops = {key: op for key, op, _ in self.plan}
        self.inputs = {key: inputs for key, _, inputs in self.plan}
        self.layers = [op for _, op, _ in self.plan]
        for key, op, inputs in self.plan:
            if isinstance(op, str):
                if op not in MERGES:
                    raise TypeError(f"decisions.py: no error model for the merge '{op}'")
                continue
            if not isinstance(op, SUPPORTED):
                raise TypeError(f"decisions.py: no error model for {type(op).__name__} ({_name(key)})")
            if isinstance(op, (nn.Softmax, nn.LogSoftmax)) and key != self.output:
                raise TypeError(f"decisions.py: {type(op).__name__} only as the output ({_name(key)})")
        # The last plan position reading each value, to free it after.
        self.last_use = {}
        for n, (_, _, inputs) in enumerate(self.plan):
            for i in inputs:
                self.last_use[i] = n

    def _source_relus(self, key, channels):
        """The ReLUs feeding the channels of node `key`'s input: a list of (ReLU key or None, first
        channel, end channel), through dropouts and channel concats (as in GoogLeNet's pools of
        concatenated branches); channels: every node's channel count so far."""
        def trace(src, start):
            while src != "input" and isinstance(self.ops[src], nn.Dropout):
                src = self.inputs[src][0]
            if src != "input" and self.ops[src] == "concat":
                out = []
                for part in self.inputs[src]:
                    out += trace(part, start)
                    start += channels[part]
                return out
            end = start + channels[src]
            return [(src if src != "input" and isinstance(self.ops[src], nn.ReLU) else None, start, end)]
        return trace(self.inputs[key][0], 0)

    def forward(self, x, x_error=None, flips=None, record=False, keep=None, direction=None):
        """Runs the network on x (float64, NCHW or [N, F]). flips: {key:
        ("relu", bool mask like z), ("kink", int tensor like z: +1 / -1 moves the unit
        to the piece above / below) or ("pool", [(row, channel, oh, ow, flat input index)])}.
        With record, returns (output, records): per decision node its input
        pre-activation / pool input, their rounding scales and the kind; at
        ("z", key), the value and scale of every node with a rounding model.
        With keep (a key), returns (output, that node's output).
        direction (|x - x'| per row) makes the records carry t, a bound on
        sum_p |dv/dx_p| |x - x'|_p for every value v (see the module doc), and
        the decision nodes' outputs, for the upstream gradients that `allowance`
        bounds flips with."""
        if not record and direction is None:
            out, kept = self._run_plain(x, flips or {}, keep)  # no rounding scales needed
            records = {}
        else:
            out, records, kept, _ = self._run(x, x_error, flips, record, keep, direction)
        if keep is not None:
            return out, kept
        return (out, records) if record else out

    def _run_plain(self, x, flips, keep):
        """The forward pass of _run without rounding scales and records (the flipped passes of
        `allowance`): the same values and gradients, at a third of the cost."""
        values, kept = {"input": x}, None
        for n, (key, layer, inputs) in enumerate(self.plan):
            xs = [values[i] for i in inputs]
            if isinstance(layer, str):
                a = torch_model.GraphNet._merge(layer, xs)
            elif key in flips and isinstance(layer, nn.ReLU):
                z = xs[0]
                a = z * ((z.detach() > 0) ^ flips[key][1]).to(z.dtype)
            elif key in flips and isinstance(layer, KINKED):
                spec, z, delta = _kinks(layer), xs[0], flips[key][1]
                a = torch.where(delta != 0, spec.value(z, spec.piece(z.detach()) + delta), layer(z))
            elif key in flips and isinstance(layer, nn.MaxPool2d):
                z = xs[0]
                _, idx = _max_pool(z.detach(), _maxpool_params(layer), return_indices=True)
                idx = idx.clone()
                for row, c, oh, ow, j in flips[key][1]:
                    idx[row, c, oh, ow] = j
                a = z.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
            else:
                a = layer(xs[0])
            values[key] = a
            if key == keep:
                kept = a
            for i in set(inputs):
                if self.last_use[i] == n:
                    del values[i]
        return values[self.output], kept

    def _run(self, x, x_error=None, flips=None, record=False, keep=None, direction=None, keep_all=False):
        flips = flips or {}
        e0 = x_error if x_error is not None else torch.zeros_like(x)
        t0 = direction if direction is not None else torch.zeros_like(x)
        vals = {"input": (x, e0, t0)}
        channels = {"input": x.shape[1]}
        records = {}
        kept = None
        u = UNIT_ROUNDOFF
        for n, (key, layer, inputs) in enumerate(self.plan):
            a, e, t = vals[inputs[0]]
            if isinstance(layer, str):
                xs = [vals[i] for i in inputs]
                with torch.no_grad():
                    if layer == "add":
                        part = xs[0][0].detach()
                        rounding = torch.zeros_like(part)
                        for v in xs[1:]:
                            part = part + v[0].detach()
                            rounding = rounding + part ** 2
                        e = torch.sqrt(sum(v[1] ** 2 for v in xs) + u ** 2 * rounding)
                        t = sum(v[2] for v in xs[1:]) + xs[0][2]
                    elif layer == "concat":
                        e = torch.cat([v[1] for v in xs], dim=1)
                        t = torch.cat([v[2] for v in xs], dim=1)
                    else:
                        (va, ea, ta), (vb, eb, tb) = xs
                        va, vb = va.detach(), vb.detach()
                        e = torch.sqrt((vb * ea) ** 2 + (va * eb) ** 2 + u ** 2 * (va * vb) ** 2)
                        t = vb.abs() * ta + va.abs() * tb
                a = torch_model.GraphNet._merge(layer, [v[0] for v in xs])
                if record and layer != "concat":
                    records[("z", key)] = (a.detach(), e)
            elif isinstance(layer, nn.Conv2d):
                with torch.no_grad():
                    w2 = layer.weight ** 2
                    b2 = layer.bias ** 2 if layer.bias is not None else None
                    kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
                    fan_in = layer.weight[0].numel()
                    e = torch.sqrt(tf.conv2d(e ** 2, w2, None, **kw) +
                                   fan_in * UNIT_ROUNDOFF ** 2 * tf.conv2d(a.detach() ** 2, w2, b2, **kw))
                    t = tf.conv2d(t, layer.weight.abs(), None, **kw)
                a = layer(a)
                if record:
                    records[("z", key)] = (a.detach(), e)
            elif isinstance(layer, nn.Linear):
                with torch.no_grad():
                    w2 = layer.weight ** 2
                    b2 = layer.bias ** 2 if layer.bias is not None else None
                    e = torch.sqrt(tf.linear(e ** 2, w2) +
                                   layer.in_features * UNIT_ROUNDOFF ** 2 * tf.linear(a.detach() ** 2, w2, b2))
                    t = tf.linear(t, layer.weight.abs())
                a = layer(a)
                if record:
                    records[("z", key)] = (a.detach(), e)
            elif isinstance(layer, _BatchNorm):
                with torch.no_grad():
                    s, c, c_round = _bn_affine(layer, a)
                    xd = a.detach()
                    e = torch.sqrt(s ** 2 * e ** 2 + 2 * u ** 2 * (s ** 2 * xd ** 2 + c ** 2) +
                                   u ** 2 * (s ** 2 * xd ** 2 + c_round ** 2))
                    t = s.abs() * t
                a = layer(a)
                if record:
                    records[("z", key)] = (a.detach(), e)
            elif isinstance(layer, torch_model.Affine):
                # Constants in double, one rounding of the result: e(y)^2 = s^2 e(x)^2 + u^2 y^2.
                a = layer(a)
                with torch.no_grad():
                    sc, _ = layer.constants(a)
                    e = torch.sqrt(sc ** 2 * e ** 2 + u ** 2 * a.detach() ** 2)
                    t = sc.abs() * t
                if record:
                    records[("z", key)] = (a.detach(), e)
            elif isinstance(layer, nn.ConstantPad2d):
                # The new pixels are the constant, exactly: no rounding, no dependence on the input.
                pads = _pad_amounts(layer)
                a = layer(a)
                with torch.no_grad():
                    e = tf.pad(e, pads, value=0.0)
                    t = tf.pad(t, pads, value=0.0)
            elif isinstance(layer, nn.ReLU):
                z = a
                zd = z.detach()
                mask = zd > 0
                if key in flips:
                    mask = mask ^ flips[key][1]
                a = z * mask.to(z.dtype)
                if record:
                    records[key] = ("relu", zd, e, t, a)
                e = torch.where(zd <= -MARGIN * e, torch.zeros_like(e), e)
            elif isinstance(layer, KINKED):
                spec = _kinks(layer)
                zd = a.detach()
                if key in flips:
                    delta = flips[key][1]
                    moved = spec.value(a, spec.piece(zd) + delta)
                    a_out = torch.where(delta != 0, moved, layer(a))
                else:
                    a_out = layer(a)
                if record:
                    records[key] = ("kink", zd, e, t, a_out, spec)
                with torch.no_grad():
                    slope = spec.slope_bound(zd, MARGIN * e)
                    m = _kink_magnitude(spec, zd, a_out.detach())
                    e = torch.where(slope == 0, torch.zeros_like(e),
                                    torch.sqrt((slope * e) ** 2 + ELEMENTWISE_ROUNDINGS * u ** 2 * m ** 2))
                    t = slope * t
                a = a_out
            elif isinstance(layer, SMOOTH):
                zd = a.detach()
                a = layer(a)
                with torch.no_grad():
                    slope = _smooth_slope_bound(layer, zd, MARGIN * e)
                    m = zd.abs() if isinstance(layer, nn.GELU) else a.detach().abs()
                    e = torch.sqrt((slope * e) ** 2 + ELEMENTWISE_ROUNDINGS * u ** 2 * m ** 2)
                    t = slope * t
                if record:
                    records[("z", key)] = (a.detach(), e)
            elif isinstance(layer, torch_model.SmeLU):
                zd = a.detach()
                a = layer(a)
                e = torch.where(zd <= -layer.beta - MARGIN * e, torch.zeros_like(e), e)
            elif isinstance(layer, nn.MaxPool2d):
                params = _maxpool_params(layer)
                pool_in = (a.detach(), e, t)
                # Indices into the unpadded input (the implicit -inf padding never wins).
                _, idx = _max_pool(a.detach(), params, return_indices=True)
                if key in flips:
                    idx = idx.clone()
                    for row, c, oh, ow, j in flips[key][1]:
                        idx[row, c, oh, ow] = j
                a = a.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
                if record:
                    records[key] = ("pool",) + pool_in + (params, self._source_relus(key, channels), a)
                with torch.no_grad():
                    e = _max_pool(e, params)
                    t = _max_pool(t, params)
            elif isinstance(layer, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
                k, s, p, ceil_mode = _avgpool_params(layer, a.shape)
                with torch.no_grad():
                    # out = (sum of the n real inputs of the window) / d, d the layer's divisor (n, or the
                    # window with its padding, or divisor_override): (sum e^2 + 2 n u^2 sum a^2) / d^2.
                    ones = torch.ones_like(a[:1, :1])
                    count = _window_sum(ones, k, s, p, ceil_mode)
                    d = count / layer(ones)
                    e = torch.sqrt((_window_sum(e ** 2, k, s, p, ceil_mode) +
                                    2 * u ** 2 * count * _window_sum(a.detach() ** 2, k, s, p, ceil_mode)) / d ** 2)
                    t = layer(t)
                a = layer(a)
                if record:
                    records[("z", key)] = (a.detach(), e)
            elif isinstance(layer, nn.Dropout):
                pass
            elif isinstance(layer, nn.Flatten):
                a = layer(a)
                e = layer(e)
                t = layer(t)
            else:  # softmax / log-softmax: smooth, and always the output
                a = layer(a)
            vals[key] = (a, e, t)
            channels[key] = a.shape[1] if a.dim() > 1 else 1
            if key == keep:
                kept = a
            if not keep_all:
                for i in set(inputs):
                    if self.last_use[i] == n:
                        del vals[i]
        return vals[self.output][0], records, kept, (vals if keep_all else None)

    def fragile(self, x, x_error, direction, objective):
        """Fragile decisions: a list of (row, key, flip, bound, |upstream gradient|)
        where flip is ("relu", flat unit index), ("kink", flat unit index, +1 / -1)
        or ("pool", channel, oh, ow, flat input index, (relu key, its channel) or None,
        flat index of the first maximum), and bound bounds sum_p |change of dF/dx_p| |x - x'|_p
        the flip can cause: |dF/da| t(z) for a ReLU (times the slope's jump for a
        kink; the upstream gradient returned is scaled by it too), |dF/dout| (t(m) + t(v)) for a pool."""
        out, records = self.forward(x.detach().requires_grad_(True), x_error, record=True, direction=direction)
        decision_keys = [i for i in records if not isinstance(i, tuple)]
        if not decision_keys:
            return []  # no ReLU, kink or max-pool (an all-smooth network: efficientnet's SiLUs)
        grads = torch.autograd.grad(objective(out).sum(), [records[i][4 if records[i][0] == "kink" else -1]
                                                           for i in decision_keys], allow_unused=True)
        found = []
        with torch.no_grad():
            for i, g in zip(decision_keys, grads):
                rec = records[i]
                out_i = rec[4] if rec[0] == "kink" else rec[-1]
                g = torch.zeros_like(out_i) if g is None else g.abs()
                if rec[0] == "relu":
                    _, z, e, t, _ = rec
                    near = (z.abs() <= MARGIN * e).flatten(1)
                    bound = (g * t).flatten(1)
                    for row, unit in near.nonzero().tolist():
                        found.append((row, i, ("relu", unit), float(bound[row, unit]), float(g.flatten(1)[row, unit])))
                    continue
                if rec[0] == "kink":
                    _, z, e, t, _, spec = rec
                    piece = spec.piece(z).flatten(1)
                    taken = torch.zeros_like(piece, dtype=torch.bool)
                    for j, k in enumerate(spec.kinks):
                        jump = spec.jump(j)
                        near = ((z - k).abs() <= MARGIN * e).flatten(1) & ~taken
                        taken |= near
                        if jump == 0:
                            continue
                        bound = (jump * g * t).flatten(1)
                        gj = (jump * g).flatten(1)
                        for row, unit in near.nonzero().tolist():
                            delta = 1 if int(piece[row, unit]) <= j else -1
                            found.append((row, i, ("kink", unit, delta), float(bound[row, unit]), float(gj[row, unit])))
                    continue
                _, a, e, t, params, relus, _ = rec
                k, s, p, _ = params
                n, c, h, w = a.shape
                m, idx = _max_pool(a, params, return_indices=True)
                oh, ow = m.shape[2], m.shape[3]
                em = e.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
                tm = t.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
                # The windows on the input padded explicitly: -inf (never near a maximum) at the padding
                # and past the bottom and right edges, where ceil_mode's last windows overhang.
                extra = (max(0, (oh - 1) * s[0] + k[0] - h - p[0]), max(0, (ow - 1) * s[1] + k[1] - w - p[1]))
                pads = (p[1], extra[1], p[0], extra[0])
                ap = tf.pad(a, pads, value=-math.inf)
                ep, tp = tf.pad(e, pads, value=0.0), tf.pad(t, pads, value=0.0)
                for dy in range(k[0]):
                    for dx in range(k[1]):
                        rows_, cols_ = slice(dy, dy + s[0] * (oh - 1) + 1, s[0]), slice(dx, dx + s[1] * (ow - 1) + 1, s[1])
                        v, ev, tv = ap[:, :, rows_, cols_], ep[:, :, rows_, cols_], tp[:, :, rows_, cols_]
                        oy = torch.arange(oh).view(1, 1, -1, 1) * s[0] + dy - p[0]
                        ox = torch.arange(ow).view(1, 1, 1, -1) * s[1] + dx - p[1]
                        j = (oy * w + ox).expand_as(v)  # into the unpadded input (where v is finite)
                        near = ((j != idx) & (v != m) & torch.isfinite(v) &
                                (m - v <= MARGIN * torch.sqrt(em ** 2 + ev ** 2)))
                        bound = g * (tm + tv)
                        for row, ch, y, xx in near.nonzero().tolist():
                            relu = next(((rk, ch - lo) for rk, lo, hi in relus if lo <= ch < hi and rk is not None),
                                        None)
                            found.append((row, i, ("pool", ch, y, xx, int(j[row, ch, y, xx]), relu,
                                                   int(idx[row, ch, y, xx])),
                                          float(bound[row, ch, y, xx]), float(g[row, ch, y, xx])))
        return found


    def records_shape(self, x, layer):
        """A zero tensor shaped like the input of node `layer` for the batch x."""
        return torch.zeros((x.shape[0],) + _layer_shape(self, x, layer), dtype=x.dtype)

    def abs_backward(self, x, x_error, seeds):
        """|J|^T seeds: seeds {key: tensor like that node's input}, pulled back to
        the input through |W|, batchnorm's |s|, the ReLU slopes that are or may be 1,
        SmeLU's slopes, the largest |slope| near z of the other activations, the
        pools' first maxima and average pools' 1/n, every input of an add,
        concat's parts, and |b|, |a| for a mul. Element by element it bounds
        sum |d value / dx| over the seeded values, weighted by the seeds."""
        with torch.no_grad():
            _, records, _, vals = self._run(x, x_error, record=True, keep_all=True)
        h = x.detach().clone().requires_grad_(True)
        absv, terms = {"input": h}, []
        for key, layer, inputs in self.plan:
            a = absv[inputs[0]]
            if key in seeds:
                terms.append((a * seeds[key]).sum())
            if isinstance(layer, str):
                xs = [absv[i] for i in inputs]
                if layer == "add":
                    a = sum(xs[1:], xs[0])
                elif layer == "concat":
                    a = torch.cat(xs, dim=1)
                else:
                    va, vb = vals[inputs[0]][0], vals[inputs[1]][0]
                    a = vb.abs() * xs[0] + va.abs() * xs[1]
            elif isinstance(layer, nn.Conv2d):
                a = tf.conv2d(a, layer.weight.abs(), None, stride=layer.stride, padding=layer.padding,
                              dilation=layer.dilation, groups=layer.groups)
            elif isinstance(layer, nn.Linear):
                a = tf.linear(a, layer.weight.abs())
            elif isinstance(layer, _BatchNorm):
                a = _bn_affine(layer, a)[0].detach().abs() * a
            elif isinstance(layer, torch_model.Affine):
                a = layer.constants(a)[0].abs() * a
            elif isinstance(layer, nn.ConstantPad2d):
                a = tf.pad(a, _pad_amounts(layer), value=0.0)  # the constant depends on nothing
            elif isinstance(layer, nn.ReLU):
                _, z, e, _, _ = records[key]
                a = a * (z > -MARGIN * e).to(a.dtype)
            elif isinstance(layer, KINKED):
                _, z, e, _, _, spec = records[key]
                a = a * spec.slope_bound(z, MARGIN * e)
            elif isinstance(layer, SMOOTH):
                z, e = vals[inputs[0]][0], vals[inputs[0]][1]
                a = a * _smooth_slope_bound(layer, z, MARGIN * e)
            elif isinstance(layer, torch_model.SmeLU):
                z = vals[inputs[0]][0]
                a = a * ((z + layer.beta) / (2 * layer.beta)).clamp(0, 1)
            elif isinstance(layer, nn.MaxPool2d):
                pool_in = records[key][1]
                _, idx = _max_pool(pool_in, _maxpool_params(layer), return_indices=True)
                a = a.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
            elif isinstance(layer, (nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)):
                a = layer(a)
            absv[key] = a
        if not terms:
            return torch.zeros_like(x)
        return torch.autograd.grad(sum(terms), h)[0]


def path_error(baseline, direction):
    """The rounding scale of the float32 path points themselves (see the module doc)."""
    return 2 * UNIT_ROUNDOFF * (baseline.abs() + direction.abs())


def allowance(net, points, point_error, direction, weights, objective, quantity, scale, exact=EXACT, chunk=64,
              details=None):
    """Sum over fragile decisions of |quantity(flipped) - quantity(unflipped)|.

    points: the path points; point_error: their rounding scale (path_error);
    direction: |x - x'|; weights: each point's quadrature weight; objective(out)
    -> F per row; quantity(forward, rows, pts) -> numpy array [len(rows), ...]:
    the contributions of the path points pts, which are the points with
    indices `rows` (for their weights), given forward(pts, keep=None) that runs
    the network with the flips under test (DecisionNet.forward); scale: the
    quantity's largest magnitude.
    The `exact` flips with the largest bounds (|w_k| times the bound from
    `fragile`) are recomputed; the others (a nearly flat background gives
    thousands of near-ties, each of which moves almost nothing) are bounded
    together for an input map (IG): |x - x'| times |J|^T of their seeds
    (DecisionNet.abs_backward), pixel by pixel. For other quantities that
    input-map bound is only a heuristic (a neuron's conductance map), or
    not even one (a layer's conductances, where its sum stands for every
    unit): such callers pass an `exact` large enough for their cases.
    Returns (allowance of the element-wise values, allowance of their sum,
    the number of fragile decisions). With details (a dict), also fills in
    its parts: "recomputed" and "bounded" (the element-wise allowances of
    the recomputed flips and of the others, 0.0 where none), and their
    counts "n_recomputed" and "n_bounded". (The bound of the others
    multiplies |W| layer after layer, which grows geometrically with the
    depth: in the 50- to 120-layer ImageNet networks it is astronomically
    loose, and only the recomputed part says anything.)"""
    if details is not None:
        details.update(recomputed=0.0, bounded=0.0, n_recomputed=0, n_bounded=0)
    found = net.fragile(points, point_error, direction, objective)
    if not found:
        return 0.0, 0.0, 0
    count = len(found)
    found = [(row, layer, flip, abs(float(weights[row])) * bound, g) for row, layer, flip, bound, g in found]
    found.sort(key=lambda f: -f[3])
    rest, found = found[exact:], [(row, layer, flip) for row, layer, flip, _, _ in found[:exact]]
    if details is not None:
        details.update(n_recomputed=len(found), n_bounded=len(rest))
    rows = sorted({row for row, _, _ in found})
    base = dict(zip(rows, quantity(lambda p, **kw: net.forward(p, **kw), rows, points[rows])))
    bounded, bounded_sum = 0.0, 0.0
    if rest:
        # sum over the rest of |w_k| |dF/dout| (|d first max / dx| + |d other / dx|), or |w_k| |dF/da| |dz/dx|
        # (a kink's |dF/da| scaled by its slope's jump in `fragile`)
        seeds = {}
        for row, layer, flip, _, g in rest:
            if layer not in seeds:
                seeds[layer] = net.records_shape(points, layer)
            seed = seeds[layer]
            if flip[0] in ("relu", "kink"):
                # z is the activation's input: seed it at the activation
                seed.view(seed.shape[0], -1)[row, flip[1]] += abs(float(weights[row])) * g
            else:
                _, ch, _, _, j, _, i1 = flip
                hw = seed.shape[2] * seed.shape[3]
                seed.view(seed.shape[0], -1)[row, ch * hw + j] += abs(float(weights[row])) * g
                seed.view(seed.shape[0], -1)[row, ch * hw + i1] += abs(float(weights[row])) * g
        per_point = net.abs_backward(points, point_error, seeds) * direction
        bounded = _to_quantity_layout(per_point.sum(0))
        bounded_sum = float(per_point.sum())
        shape = next(iter(base.values())).shape if base else None
        if shape is not None and bounded.shape != shape:
            # The quantity is laid out otherwise: flat (a neuron's map), or not an input map at all (a layer's
            # conductances), where the whole map's bound stands for every element.
            bounded = bounded.reshape(shape) if bounded.size == int(np.prod(shape)) else bounded_sum
    total = None
    total_sum = 0.0

    def relu_mask(flips, key, pts, n):
        _, mask = flips.setdefault(key, ("relu", None))
        if mask is None:
            mask = torch.zeros((n,) + _layer_shape(net, pts, key), dtype=torch.bool)
            flips[key] = ("relu", mask)
        return mask

    for start in range(0, len(found), chunk):
        part = found[start:start + chunk]
        pts = points[[row for row, _, _ in part]]
        flips = {}
        for r, (_, layer, flip) in enumerate(part):
            if flip[0] == "relu":
                relu_mask(flips, layer, pts, len(part)).view(len(part), -1)[r, flip[1]] = True
            elif flip[0] == "kink":
                _, delta = flips.setdefault(layer, ("kink", None))
                if delta is None:
                    delta = torch.zeros((len(part),) + _layer_shape(net, pts, layer), dtype=torch.long)
                    flips[layer] = ("kink", delta)
                delta.view(len(part), -1)[r, flip[1]] = flip[2]
            else:
                _, ch, oy, ox, j, relu, _ = flip
                flips.setdefault(layer, ("pool", []))[1].append((r, ch, oy, ox, j))
                if relu is not None:
                    # The other input wins only when its own ReLU is on (relu: its key, and the
                    # channel there, which differs from ch behind a concat).
                    relu, rch = relu
                    mask = relu_mask(flips, relu, pts, len(part))
                    z = _pre_activation(net, pts[r:r + 1], relu)
                    hh, ww = z.shape[2], z.shape[3]
                    if z.reshape(-1)[rch * hh * ww + j] <= 0:
                        mask[r, rch].view(-1)[j] = True
        got = quantity(lambda p, f=flips, **kw: net.forward(p, flips=f, **kw), [row for row, _, _ in part], pts)
        for r, (row, _, _) in enumerate(part):
            d = got[r] - base[row]
            total = np.abs(d) if total is None else total + np.abs(d)
            total_sum += abs(float(d.sum()))
    if details is not None:
        details.update(recomputed=0.0 if total is None else total, bounded=bounded)
    if total is None:
        return bounded, bounded_sum, count
    return total + bounded, total_sum + bounded_sum, count


def _to_quantity_layout(t):
    """An input-shaped bound [C, H, W] or [F] as the IG maps are laid out: [H, W] for one channel."""
    t = t.detach()
    if t.dim() == 3:
        t = t.permute(1, 2, 0)
        if t.shape[2] == 1:
            t = t[:, :, 0]
    return t.numpy()


def _layer_shape(net, pts, layer):
    return tuple(_pre_activation(net, pts[:1], layer).shape[1:])


def _plain_values(plan, x, stop=None):
    """Every node's output, the model's own modules run in plan order (before node `stop`, if given)."""
    values = {"input": x}
    for key, op, inputs in plan:
        if key == stop:
            break
        xs = [values[i] for i in inputs]
        values[key] = torch_model.GraphNet._merge(op, xs) if isinstance(op, str) else op(xs[0])
    return values


def _pre_activation(net, pt, layer):
    """The input of node `layer` (its first input), the model run without flips."""
    with torch.no_grad():
        return _plain_values(net.plan, pt, stop=layer)[net.inputs[layer][0]]


def calibration(net, model32, points, point_error):
    """The largest |z32 - z64| / e(z) over the outputs of the nodes with a rounding
    model (convolutions, dense layers, batchnorms, merges that round, average pools,
    smooth activations), PyTorch float32 against float64: how many rounding scales
    real rounding uses."""
    with torch.no_grad():
        _, records = net.forward(points, point_error, record=True)
        worst = 0.0
        values = _plain_values(_plan(model32)[0], points.float())
        for key, a in values.items():
            if ("z", key) in records:
                z, e = records[("z", key)]
                worst = max(worst, ((a.double() - z).abs() / e.clamp_min(1e-300)).max().item())
    return worst
