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
     max-pool        e = the largest e in the window
   (`calibration` measures the scale: over 512 path points of fashion_cnn_v1,
   PyTorch's float32 pre-activations, oneDNN's and the BLAS's alike, stay
   within 4.8 e of float64; the IG oracle checks it stays within T / 2 on
   each of its cases.)
2. A decision is fragile within T = MARGIN scales of the other branch: a
   ReLU with |z| <= T e(z); a max-pool window whose first maximum m and another
   input v satisfy m - v <= T sqrt(e(m)^2 + e(v)^2), unless m == v exactly in
   float64 (such exact ties come from identical inputs, e.g. a flat
   background; every backend must break them to the first maximum, and the
   oracles hold them to it).
   SmeLU's derivative is continuous, so its pieces are no decisions.
3. For each fragile decision at path point k, the quantity under test (an IG
   map, a conductance) is recomputed in float64 with that one decision
   flipped (the ReLU's mask inverted; the pool's gradient sent to the other
   input, whose ReLU is then taken as on). The allowance is the sum over
   fragile decisions of |flipped - unflipped| (first order: one flip at a
   time; simultaneous flips interact only at second order). An oracle passes
   when |ours - float64| <= tolerance * scale + allowance, element by element.

A wrong sign in a backward pass, a wrong quadrature weight or a tie sent to
the last maximum changes results at stable points too, which no allowance
covers, so such bugs still fail.
"""
import numpy as np
import torch
import torch.nn.functional as tf
from torch import nn

import torch_model

UNIT_ROUNDOFF = 2.0 ** -24
# Fragile within this many rounding scales: over three times the largest
# deviation measured (4.8), for kernels that round worse than PyTorch's
# (Winograd transforms, other blockings).
MARGIN = 16.0
# The flips with the largest bounds that `allowance` recomputes; the others
# are bounded (see `allowance`).
EXACT = 256


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class DecisionNet:
    """A float64 nn.Sequential (from torch_model.build_sequential) run layer by
    layer with rounding scales, decision records and optional flipped decisions."""

    def __init__(self, model):
        self.layers = list(model)
        for layer in self.layers:
            if not isinstance(layer, (nn.Conv2d, nn.Linear, nn.ReLU, torch_model.SmeLU, nn.MaxPool2d, nn.Dropout,
                                      nn.Flatten, nn.Softmax, nn.LogSoftmax)):
                raise TypeError(f"decisions.py: no error model for {type(layer).__name__}")

    def forward(self, x, x_error=None, flips=None, record=False, keep=None, direction=None):
        """Runs the network on x (float64, NCHW or [N, F]). flips: {layer index:
        ("relu", bool mask like z) or ("pool", [(row, channel, oh, ow, flat input index)])}.
        With record, returns (output, records): per decision layer its input
        pre-activation / pool input, their rounding scales and the layer kind.
        With keep (a layer index), returns (output, that layer's output).
        direction (|x - x'| per row) makes the records carry t, a bound on
        sum_p |dv/dx_p| |x - x'|_p for every value v (|W| applied to t, slopes
        <= 1, the window maximum for pools), and the decision layers' outputs,
        for the upstream gradients that `allowance` bounds flips with."""
        flips = flips or {}
        a = x
        e = x_error if x_error is not None else torch.zeros_like(x)
        t = direction if direction is not None else torch.zeros_like(x)
        records = {}
        prev_relu = None
        for i, layer in enumerate(self.layers):
            if isinstance(layer, nn.Conv2d):
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
                    records[("z", i)] = (a.detach(), e)
            elif isinstance(layer, nn.Linear):
                with torch.no_grad():
                    w2 = layer.weight ** 2
                    b2 = layer.bias ** 2 if layer.bias is not None else None
                    e = torch.sqrt(tf.linear(e ** 2, w2) +
                                   layer.in_features * UNIT_ROUNDOFF ** 2 * tf.linear(a.detach() ** 2, w2, b2))
                    t = tf.linear(t, layer.weight.abs())
                a = layer(a)
                if record:
                    records[("z", i)] = (a.detach(), e)
            elif isinstance(layer, nn.ReLU):
                z = a
                zd = z.detach()
                mask = zd > 0
                if i in flips:
                    mask = mask ^ flips[i][1]
                a = z * mask.to(z.dtype)
                if record:
                    records[i] = ("relu", zd, e, t, a)
                e = torch.where(zd <= -MARGIN * e, torch.zeros_like(e), e)
                prev_relu = i
            elif isinstance(layer, torch_model.SmeLU):
                zd = a.detach()
                a = layer(a)
                e = torch.where(zd <= -layer.beta - MARGIN * e, torch.zeros_like(e), e)
                prev_relu = None
            elif isinstance(layer, nn.MaxPool2d):
                k, s = _pair(layer.kernel_size), _pair(layer.stride)
                if _pair(layer.padding) != (0, 0) or _pair(layer.dilation) != (1, 1) or layer.ceil_mode:
                    raise TypeError("decisions.py: max-pool with padding, dilation or ceil_mode")
                pool_in = (a.detach(), e, t)
                _, idx = tf.max_pool2d(a.detach(), k, s, return_indices=True)
                if i in flips:
                    idx = idx.clone()
                    for row, c, oh, ow, j in flips[i][1]:
                        idx[row, c, oh, ow] = j
                n, c, h, w = a.shape
                a = a.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
                if record:
                    records[i] = ("pool",) + pool_in + (k, s, prev_relu, a)
                with torch.no_grad():
                    e = tf.max_pool2d(e, k, s)
                    t = tf.max_pool2d(t, k, s)
                prev_relu = None
            elif isinstance(layer, nn.Dropout):
                pass
            elif isinstance(layer, nn.Flatten):
                a = layer(a)
                e = layer(e)
                t = layer(t)
                prev_relu = None
            else:  # softmax / log-softmax: smooth, and always the last layer
                a = layer(a)
            if i == keep:
                kept = a
        if keep is not None:
            return a, kept
        return (a, records) if record else a

    def fragile(self, x, x_error, direction, objective):
        """Fragile decisions: a list of (row, layer, flip, bound, |upstream gradient|)
        where flip is ("relu", flat unit index) or ("pool", channel, oh, ow, flat
        input index, relu layer or None, flat index of the first maximum), and bound bounds sum_p |change of dF/dx_p| |x - x'|_p
        the flip can cause: |dF/da| t(z) for a ReLU, |dF/dout| (t(m) + t(v)) for a pool."""
        out, records = self.forward(x.detach().requires_grad_(True), x_error, record=True, direction=direction)
        decision_layers = [i for i in records if isinstance(i, int)]
        grads = torch.autograd.grad(objective(out).sum(), [records[i][-1] for i in decision_layers],
                                    allow_unused=True)
        found = []
        with torch.no_grad():
            for i, g in zip(decision_layers, grads):
                rec = records[i]
                g = torch.zeros_like(rec[-1]) if g is None else g.abs()
                if rec[0] == "relu":
                    _, z, e, t, _ = rec
                    near = (z.abs() <= MARGIN * e).flatten(1)
                    bound = (g * t).flatten(1)
                    for row, unit in near.nonzero().tolist():
                        found.append((row, i, ("relu", unit), float(bound[row, unit]), float(g.flatten(1)[row, unit])))
                    continue
                _, a, e, t, k, s, relu, _ = rec
                n, c, h, w = a.shape
                oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
                m, idx = tf.max_pool2d(a, k, s, return_indices=True)
                em = e.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
                tm = t.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
                for dy in range(k[0]):
                    for dx in range(k[1]):
                        rows_, cols_ = slice(dy, dy + s[0] * (oh - 1) + 1, s[0]), slice(dx, dx + s[1] * (ow - 1) + 1, s[1])
                        v, ev, tv = a[:, :, rows_, cols_], e[:, :, rows_, cols_], t[:, :, rows_, cols_]
                        oy = torch.arange(oh).view(1, 1, -1, 1) * s[0] + dy
                        ox = torch.arange(ow).view(1, 1, 1, -1) * s[1] + dx
                        j = (oy * w + ox).expand_as(v)
                        near = (j != idx) & (v != m) & (m - v <= MARGIN * torch.sqrt(em ** 2 + ev ** 2))
                        bound = g * (tm + tv)
                        for row, ch, y, xx in near.nonzero().tolist():
                            found.append((row, i, ("pool", ch, y, xx, int(j[row, ch, y, xx]), relu,
                                                   int(idx[row, ch, y, xx])),
                                          float(bound[row, ch, y, xx]), float(g[row, ch, y, xx])))
        return found


    def records_shape(self, x, layer):
        """A zero tensor shaped like the input of `layer` for the batch x."""
        return torch.zeros((x.shape[0],) + _layer_shape(self, x, layer), dtype=x.dtype)

    def abs_backward(self, x, x_error, seeds):
        """|J|^T seeds: seeds {layer: tensor like that layer's input}, pulled back to
        the input through |W|, the ReLU slopes that are or may be 1, SmeLU's
        slopes and the pools' first maxima. Element by element it bounds
        sum |d value / dx| over the seeded values, weighted by the seeds."""
        with torch.no_grad():
            _, records = self.forward(x, x_error, record=True)
        h = x.detach().clone().requires_grad_(True)
        a, terms = h, []
        for i, layer in enumerate(self.layers):
            if i in seeds:
                terms.append((a * seeds[i]).sum())
            if isinstance(layer, nn.Conv2d):
                a = tf.conv2d(a, layer.weight.abs(), None, stride=layer.stride, padding=layer.padding,
                              dilation=layer.dilation, groups=layer.groups)
            elif isinstance(layer, nn.Linear):
                a = tf.linear(a, layer.weight.abs())
            elif isinstance(layer, nn.ReLU):
                _, z, e, _, _ = records[i]
                a = a * (z > -MARGIN * e).to(a.dtype)
            elif isinstance(layer, torch_model.SmeLU):
                z = records[("z", i - 1)][0]
                a = a * ((z + layer.beta) / (2 * layer.beta)).clamp(0, 1)
            elif isinstance(layer, nn.MaxPool2d):
                pool_in = records[i][1]
                _, idx = tf.max_pool2d(pool_in, _pair(layer.kernel_size), _pair(layer.stride), return_indices=True)
                a = a.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)
            elif isinstance(layer, nn.Flatten):
                a = layer(a)
        if not terms:
            return torch.zeros_like(x)
        return torch.autograd.grad(sum(terms), h)[0]


def path_error(baseline, direction):
    """The rounding scale of the float32 path points themselves (see the module doc)."""
    return 2 * UNIT_ROUNDOFF * (baseline.abs() + direction.abs())


def allowance(net, points, point_error, direction, weights, objective, quantity, scale, exact=EXACT, chunk=64):
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
    the number of fragile decisions)."""
    found = net.fragile(points, point_error, direction, objective)
    if not found:
        return 0.0, 0.0, 0
    count = len(found)
    found = [(row, layer, flip, abs(float(weights[row])) * bound, g) for row, layer, flip, bound, g in found]
    found.sort(key=lambda f: -f[3])
    rest, found = found[exact:], [(row, layer, flip) for row, layer, flip, _, _ in found[:exact]]
    rows = sorted({row for row, _, _ in found})
    base = dict(zip(rows, quantity(lambda p, **kw: net.forward(p, **kw), rows, points[rows])))
    bounded, bounded_sum = 0.0, 0.0
    if rest:
        # sum over the rest of |w_k| |dF/dout| (|d first max / dx| + |d other / dx|), or |w_k| |dF/da| |dz/dx|
        seeds = {}
        for row, layer, flip, _, g in rest:
            if layer not in seeds:
                seeds[layer] = net.records_shape(points, layer)
            seed = seeds[layer]
            if flip[0] == "relu":
                # z is the ReLU's input: seed it at the ReLU layer
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
    for start in range(0, len(found), chunk):
        part = found[start:start + chunk]
        pts = points[[row for row, _, _ in part]]
        flips = {}
        for r, (_, layer, flip) in enumerate(part):
            if flip[0] == "relu":
                _, mask = flips.setdefault(layer, ("relu", None))
                if mask is None:
                    mask = torch.zeros((len(part),) + _layer_shape(net, pts, layer), dtype=torch.bool)
                    flips[layer] = ("relu", mask)
                mask.view(len(part), -1)[r, flip[1]] = True
            else:
                _, ch, oy, ox, j, relu, _ = flip
                flips.setdefault(layer, ("pool", []))[1].append((r, ch, oy, ox, j))
                if relu is not None:
                    # The other input wins only when its own ReLU is on.
                    _, mask = flips.setdefault(relu, ("relu", None))
                    if mask is None:
                        mask = torch.zeros((len(part),) + _layer_shape(net, pts, relu), dtype=torch.bool)
                        flips[relu] = ("relu", mask)
                    z = _pre_activation(net, pts[r:r + 1], relu)
                    hh, ww = z.shape[2], z.shape[3]
                    if z.reshape(-1)[ch * hh * ww + j] <= 0:
                        mask[r, ch].view(-1)[j] = True
        got = quantity(lambda p, f=flips, **kw: net.forward(p, flips=f, **kw), [row for row, _, _ in part], pts)
        for r, (row, _, _) in enumerate(part):
            d = got[r] - base[row]
            total = np.abs(d) if total is None else total + np.abs(d)
            total_sum += abs(float(d.sum()))
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


def _pre_activation(net, pt, layer):
    with torch.no_grad():
        a = pt
        for layer_obj in net.layers[:layer]:
            a = layer_obj(a)
    return a


def calibration(net, model32, points, point_error):
    """The largest |z32 - z64| / e(z) over the outputs of the convolutions and
    dense layers, PyTorch float32 against float64: how many rounding scales
    real rounding uses."""
    with torch.no_grad():
        _, records = net.forward(points, point_error, record=True)
        worst = 0.0
        a = points.float()
        for i, layer in enumerate(model32):
            a = layer(a)
            if ("z", i) in records:
                z, e = records[("z", i)]
                worst = max(worst, ((a.double() - z).abs() / e.clamp_min(1e-300)).max().item())
    return worst
