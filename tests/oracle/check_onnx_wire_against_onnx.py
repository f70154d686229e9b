#!/usr/bin/env python3
"""igscope's protobuf reader against python3-onnx: for every model of the
ONNX test set (tests/oracle/onnx_models.py, built into --workdir), `igscope
import MODEL --dump-onnx` must give the same node list (names, operator types,
domains, inputs, outputs), the same attributes (types and values) and the
same weights (names, data types, dims and the CRC-32 of their
little-endian bytes) as onnx.load reads from the same file."""
import argparse
import json
import os
import subprocess
import sys
import zlib

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_models  # noqa: E402


def tensor_expect(t):
    arr = numpy_helper.to_array(t)
    return {"name": t.name, "data_type": t.data_type, "dims": list(t.dims), "external": False,
            "crc32": "%08x" % zlib.crc32(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes())}


def attribute_expect(a):
    out = {"name": a.name, "type": a.type}
    if a.type == onnx.AttributeProto.FLOAT:
        out["f"] = float(np.float32(a.f))
    elif a.type == onnx.AttributeProto.INT:
        out["i"] = a.i
    elif a.type == onnx.AttributeProto.STRING:
        out["s"] = a.s.decode("utf-8", "replace")
    elif a.type == onnx.AttributeProto.TENSOR:
        out["t"] = tensor_expect(a.t)
    elif a.type == onnx.AttributeProto.FLOATS:
        out["floats"] = [float(np.float32(v)) for v in a.floats]
    elif a.type == onnx.AttributeProto.INTS:
        out["ints"] = list(a.ints)
    elif a.type == onnx.AttributeProto.STRINGS:
        out["strings"] = [s.decode("utf-8", "replace") for s in a.strings]
    return out


def values_expect(vs):
    out = []
    for v in vs:
        shape = None
        if v.type.tensor_type.HasField("shape"):
            shape = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in v.type.tensor_type.shape.dim]
        out.append({"name": v.name, "elem_type": v.type.tensor_type.elem_type, "shape": shape})
    return out


def expect(model):
    g = model.graph
    return {
        "ir_version": model.ir_version,
        "producer_name": model.producer_name,
        "opset_import": [{"domain": o.domain, "version": o.version} for o in model.opset_import],
        "graph": {
            "name": g.name,
            "inputs": values_expect(g.input),
            "outputs": values_expect(g.output),
            "initializers": [tensor_expect(t) for t in g.initializer],
            "nodes": [{"name": n.name, "op_type": n.op_type, "domain": n.domain, "inputs": list(n.input),
                       "outputs": list(n.output), "attributes": [attribute_expect(a) for a in n.attribute]}
                      for n in g.node],
        },
    }


def first_difference(a, b, path="$"):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: present on one side only"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} entries against {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} against {b!r}"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--set", help="an existing test-set folder (default: build one in WORKDIR/set)")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    set_dir = args.set or os.path.join(args.workdir, "set")
    if not args.set:
        onnx_models.build(set_dir, sizes=(64,), opsets=(13, 17))
    entries = onnx_models.load_manifest(set_dir)
    failures = 0
    for e in entries:
        path = os.path.join(set_dir, e["file"])
        out = os.path.join(args.workdir, e["file"] + ".json")
        subprocess.run([args.igscope, "import", path, "--dump-onnx", out], check=True)
        ours = json.load(open(out))
        model = onnx.load(path)
        want = expect(model)
        diff = first_difference(ours, want)
        g = want["graph"]
        n_attrs = sum(len(n["attributes"]) for n in g["nodes"])
        status = "ok" if diff is None else "FAIL " + diff
        print(f"{e['file']:34s} {len(g['nodes']):4d} nodes {n_attrs:4d} attributes {len(g['initializers']):4d} "
              f"tensors: {status}")
        failures += diff is not None
    if failures:
        sys.exit(f"{failures} of {len(entries)} models differ from python3-onnx")
    print(f"all {len(entries)} models agree with python3-onnx")


if __name__ == "__main__":
    main()
