"""An independent reading of igscope model files in PyTorch.

Parses the .safetensors container with json + numpy (no igscope code), builds
an nn.Sequential (or a module graph) from the architecture in __metadata__, and loads the tensors
with load_state_dict(strict=True). Inputs are NHWC as igscope takes them; the
network runs NCHW as PyTorch does.
"""
import json
import struct

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, entry in header.items():
        # I64 only for batchnorm's counter, as PyTorch stores it; F32 everywhere else.
        if name.endswith(".num_batches_tracked"):
            assert entry["dtype"] == "I64", entry
        else:
            assert entry["dtype"] == "F32", entry
        begin, end = entry["data_offsets"]
        dtype = "<i8" if entry["dtype"] == "I64" else "<f4"
        arr = np.frombuffer(data[begin:end], dtype=dtype).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return metadata, tensors



def write_safetensors(path, tensors, metadata):
    """A .safetensors file in the layout igscope reads: name -> numpy array or
    torch tensor (int64 ones as I64, the rest as F32), the header padded so the
    data starts 8-byte aligned, `metadata` as __metadata__."""
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        arr = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        if arr.dtype == np.int64:
            dtype, raw = "I64", arr.astype("<i8").tobytes()
        else:
            dtype, raw = "F32", np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((-(8 + len(text))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))

class SmeLU(nn.Module):
    """Smooth ReLU, written from its definition: 0 below -beta, x above beta,
    (x + beta)^2 / (4 beta) between."""

    def __init__(self, beta):
        super().__init__()
        self.beta = beta

    def forward(self, x):
        b = self.beta
        quad = (x + b) ** 2 / (4 * b)
        return torch.where(x >= b, x, torch.where(x <= -b, torch.zeros_like(x), quad))


# The elementwise activations, as torch.nn modules (igscope's defaults are PyTorch's).
ACTIVATIONS = {
    "sigmoid": lambda spec: nn.Sigmoid(),
    "tanh": lambda spec: nn.Tanh(),
    "gelu": lambda spec: nn.GELU(approximate=spec.get("approximate", "none")),
    "silu": lambda spec: nn.SiLU(),
    "leaky_relu": lambda spec: nn.LeakyReLU(spec.get("negative_slope", 0.01)),
    "relu6": lambda spec: nn.ReLU6(),
    "hardswish": lambda spec: nn.Hardswish(),
    "hardsigmoid": lambda spec: nn.Hardsigmoid(),
}


def pair(v):
    return tuple(v) if isinstance(v, list) else (v, v)


class Affine(nn.Module):
    """igscope's affine node: y = scale * x + shift along the channel axis of
    NCHW (the features of [N, F]), each list of 1 or C entries. Like igscope,
    it computes in float64 from the constants as written (doubles) and rounds
    the result once to the input's dtype; it has no parameters (the constants
    are in the architecture, not the state_dict)."""

    def __init__(self, scale, shift):
        super().__init__()
        self.scale = [float(v) for v in (scale if isinstance(scale, list) else [scale])]
        self.shift = [float(v) for v in (shift if isinstance(shift, list) else [shift])]

    def constants(self, x):
        """(scale, shift) as float64 tensors shaped to broadcast against x (NCHW or [N, F])."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        for v in (self.scale, self.shift):
            if len(v) != 1 and len(v) != x.shape[1]:
                raise ValueError(f"affine: {len(v)} constants for {x.shape[1]} channels")
        return (torch.tensor(self.scale, dtype=torch.float64).view(shape),
                torch.tensor(self.shift, dtype=torch.float64).view(shape))

    def forward(self, x):
        scale, shift = self.constants(x)
        return (x.double() * scale + shift).to(x.dtype)

    def extra_repr(self):
        return f"scale={self.scale}, shift={self.shift}"


class PatchEmbed(nn.Conv2d):
    """igscope's patch_embed: a convolution with kernel = stride = patch, its
    output cells in row-major order as tokens [N, T, D]."""

    def __init__(self, channels, dim, patch):
        super().__init__(channels, dim, patch, stride=patch)

    def forward(self, x):
        return super().forward(x).flatten(2).transpose(1, 2)


class ClassToken(nn.Module):
    """A learned token put before the others (igscope's class_token)."""

    def __init__(self, dim):
        super().__init__()
        self.token = nn.Parameter(0.5 * torch.randn(1, 1, dim))

    def forward(self, x):
        return torch.cat([self.token.expand(x.shape[0], -1, -1), x], dim=1)


class PositionEmbedding(nn.Module):
    """A learned [1, T, D] added to the tokens (igscope's position_embedding)."""

    def __init__(self, tokens, dim):
        super().__init__()
        self.embedding = nn.Parameter(0.5 * torch.randn(1, tokens, dim))

    def forward(self, x):
        return x + self.embedding


class SelfAttention(nn.MultiheadAttention):
    """igscope's attention: PyTorch's own multi-head attention (its tensors
    and names), queries, keys and values all the tokens."""

    def __init__(self, dim, heads):
        super().__init__(dim, heads, batch_first=True)

    def forward(self, x):
        return super().forward(x, x, x, need_weights=False)[0]


class SelectToken(nn.Module):
    def __init__(self, index):
        super().__init__()
        self.index = index

    def forward(self, x):
        return x[:, self.index]


class MeanTokens(nn.Module):
    def forward(self, x):
        return x.mean(dim=1)


def avg_pool(spec):
    """nn.AvgPool2d for an avgpool2d entry (igscope's defaults are PyTorch's)."""
    return nn.AvgPool2d(pair(spec["kernel"]), stride=pair(spec.get("stride", spec["kernel"])),
                        padding=pair(spec.get("padding", 0)), ceil_mode=spec.get("ceil_mode", False),
                        count_include_pad=spec.get("count_include_pad", True))


def build_sequential(arch):
    """nn.Sequential from igscope architecture JSON (same layer indices)."""
    shape = list(arch["input"])  # [H, W, C], tokens [T, D] or [F]
    chw = len(shape) == 3
    tokens = len(shape) == 2
    channels = shape[2] if chw else None
    features = shape[0] if len(shape) == 1 else None
    layers = []
    for spec in arch["layers"]:
        t = spec["type"]
        if t == "patch_embed":
            layers.append(PatchEmbed(channels, spec["dim"], spec["patch"]))
        elif t == "class_token":
            layers.append(ClassToken(shape[1]))
        elif t == "position_embedding":
            layers.append(PositionEmbedding(shape[0], shape[1]))
        elif t == "attention":
            layers.append(SelfAttention(shape[1], spec["heads"]))
        elif t == "layernorm":
            layers.append(nn.LayerNorm(shape[-1], eps=spec.get("eps", 1e-5)))
        elif t == "select_token":
            layers.append(SelectToken(spec.get("index", 0)))
        elif t == "mean_tokens":
            layers.append(MeanTokens())
        elif t == "conv2d":
            conv = nn.Conv2d(
                channels,
                spec["out_channels"],
                pair(spec["kernel"]),
                stride=pair(spec.get("stride", 1)),
                padding=pair(spec.get("padding", 0)),
                dilation=pair(spec.get("dilation", 1)),
                groups=spec.get("groups", 1),
            )
            layers.append(conv)
            channels = spec["out_channels"]
        elif t == "maxpool2d":
            k = pair(spec["kernel"])
            layers.append(nn.MaxPool2d(k, stride=pair(spec.get("stride", spec["kernel"])),
                                       padding=pair(spec.get("padding", 0)), ceil_mode=spec.get("ceil_mode", False)))
        elif t == "avgpool2d":
            layers.append(avg_pool(spec))
        elif t == "affine":
            layers.append(Affine(spec["scale"], spec["shift"]))
        elif t == "pad2d":
            top, left, bottom, right = spec["padding"]
            layers.append(nn.ConstantPad2d((left, right, top, bottom), float(spec.get("value", 0.0))))
        elif t == "global_avgpool":
            layers.append(nn.AdaptiveAvgPool2d(1))
        elif t == "relu":
            layers.append(nn.ReLU())
        elif t == "smelu":
            layers.append(SmeLU(spec["beta"]))
        elif t in ACTIVATIONS:
            layers.append(ACTIVATIONS[t](spec))
        elif t == "batchnorm":
            # Lazy: the channel / feature count comes from the dummy pass below.
            flat = not chw or any(isinstance(m, nn.Flatten) for m in layers)
            bn = nn.LazyBatchNorm1d if flat else nn.LazyBatchNorm2d
            layers.append(bn(eps=spec.get("eps", 1e-5), momentum=spec.get("momentum", 0.1)))
        elif t == "dropout":
            layers.append(nn.Dropout(spec.get("p", 0.5)))
        elif t == "flatten":
            layers.append(nn.Flatten())
            features = None  # inferred lazily below
        elif t == "dense":
            layers.append(nn.LazyLinear(spec["out_features"]))
        elif t == "softmax":
            layers.append(nn.Softmax(dim=1))
        elif t == "log_softmax":
            layers.append(nn.LogSoftmax(dim=1))
        else:
            raise ValueError(f"unknown layer type {t}")
    model = nn.Sequential(*layers)
    # Materialise the lazy dense layers with one dummy pass.
    sample = (torch.zeros(1, shape[2], shape[0], shape[1]) if chw else
              torch.zeros(1, shape[0], shape[1]) if tokens else torch.zeros(1, features))
    # In evaluation mode: a batch of one cannot pass a training batchnorm, and
    # the dummy pass must not update running statistics.
    model.eval()
    with torch.no_grad():
        model(sample)
    model.train()
    return model


def load_model(path):
    metadata, tensors = read_safetensors(path)
    arch = json.loads(metadata["architecture"])
    model = GraphNet(arch) if "nodes" in arch else build_sequential(arch)
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model, arch


def to_torch_input(x_nhwc):
    """NHWC numpy batch -> NCHW torch tensor (flat inputs pass through)."""
    t = torch.from_numpy(np.ascontiguousarray(x_nhwc, dtype=np.float32))
    return t.permute(0, 3, 1, 2).contiguous() if t.dim() == 4 else t


def to_nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous().numpy() if t.dim() == 4 else t.numpy()


MERGES = ("add", "concat", "mul")


def _topological(nodes):
    """The nodes in an order where every node comes after its inputs."""
    done, order, pending = {"input"}, [], list(nodes)
    while pending:
        ready = [n for n in pending if all(i in done for i in n["inputs"])]
        if not ready:
            raise ValueError("the graph has a cycle or a dangling input")
        for n in ready:
            order.append(n)
            done.add(n["id"])
            pending.remove(n)
    return order


class GraphNet(nn.Module):
    """A module graph from igscope's graph form (nodes with ids and inputs):
    each node's module sits at its id as a module path ("layer1.0.conv1"),
    so the state_dict names are igscope's tensor names."""

    def __init__(self, arch):
        super().__init__()
        self.plan, self.output = [], arch["output"]
        shapes = {"input": list(arch["input"])}  # igscope's per-sample shapes, [H, W, C] or [F]
        for spec in _topological(arch["nodes"]):
            node_id, t, inputs = spec["id"], spec["type"], spec["inputs"]
            if t in MERGES:
                dummy = [self._dummy(shapes[i]) for i in inputs]
                out = self._merge(t, dummy)
            else:
                layer = {k: v for k, v in spec.items() if k not in ("id", "inputs")}
                module = build_sequential({"input": shapes[inputs[0]], "layers": [layer]})[0]
                self._register(node_id, module)
                module.eval()
                with torch.no_grad():
                    out = module(self._dummy(shapes[inputs[0]]))
                module.train()
            shapes[node_id] = ([out.shape[2], out.shape[3], out.shape[1]] if out.dim() == 4 else
                               list(out.shape[1:]))  # tokens [T, D] or features [F]
            self.plan.append((node_id, t, inputs))

    @staticmethod
    def _dummy(shape):
        return torch.zeros(1, shape[2], shape[0], shape[1]) if len(shape) == 3 else torch.zeros(1, *shape)

    @staticmethod
    def _merge(t, xs):
        if t == "add":
            return sum(xs[1:], xs[0])
        if t == "concat":
            return torch.cat(xs, dim=1)  # channels of NCHW, features of [N, F]
        return xs[0] * xs[1]  # [N, C, 1, 1] broadcasts over [N, C, H, W]

    def _register(self, path, module):
        parent, parts = self, path.split(".")
        for part in parts[:-1]:
            if not hasattr(parent, part):
                parent.add_module(part, nn.Module())
            parent = getattr(parent, part)
        parent.add_module(parts[-1], module)
        self._modules_by_id = getattr(self, "_modules_by_id", {})
        self._modules_by_id[path] = module

    def node(self, node_id):
        return self._modules_by_id[node_id]

    def forward(self, x, keep=None):
        """The output; with keep (a dict), also every node's output in it."""
        values = {"input": x}
        for node_id, t, inputs in self.plan:
            xs = [values[i] for i in inputs]
            values[node_id] = self._merge(t, xs) if t in MERGES else self._modules_by_id[node_id](xs[0])
        if keep is not None:
            keep.update(values)
        return values[self.output]
