#!/usr/bin/python3
"""Writes a random Fashion-MNIST graph model (28x28x1 input, 10 logits) for
the oracles that take --model: weights from PyTorch's default initialisation
and batchnorm statistics drawn as check_graphs_against_torch.py draws them
(so evaluation-mode batchnorm is no identity), all from one seed, written
from GraphNet's state_dict in the layout igscope reads.

  resnet  a conv-bn-relu stem and a 2x2 max-pool, an identity residual block
          (add), a stride-2 block with a 1x1 stride-2 conv + bn shortcut, a
          dense head (torchvision's node names)
  mixed   the other node kinds: a conv-bn-hardswish stem and a max-pool fed
          by no ReLU, parallel branches (leaky_relu, relu6, gelu, tanh,
          hardsigmoid) into a concat, a stride-2 conv-bn-silu, a
          squeeze-and-excitation gate (a full-size conv, gelu tanh, a 1x1 conv,
          sigmoid) applied by a broadcast mul, a residual add, a dense head
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_graphs_against_torch import conv, randomize_statistics, unary  # noqa: E402
from torch_model import GraphNet, write_safetensors  # noqa: E402


def resnet(c1=6, c2=8):
    nodes = [conv("conv1", "input", c1, 3), unary("bn1", "batchnorm", "conv1"), unary("relu", "relu", "bn1"),
             unary("maxpool", "maxpool2d", "relu", kernel=2)]
    nodes += [conv("layer1.0.conv1", "maxpool", c1, 3), unary("layer1.0.bn1", "batchnorm", "layer1.0.conv1"),
              unary("layer1.0.relu1", "relu", "layer1.0.bn1"), conv("layer1.0.conv2", "layer1.0.relu1", c1, 3),
              unary("layer1.0.bn2", "batchnorm", "layer1.0.conv2"),
              {"id": "layer1.0.add", "type": "add", "inputs": ["layer1.0.bn2", "maxpool"]},
              unary("layer1.0.relu2", "relu", "layer1.0.add")]
    nodes += [conv("layer2.0.conv1", "layer1.0.relu2", c2, 3, stride=2),
              unary("layer2.0.bn1", "batchnorm", "layer2.0.conv1"), unary("layer2.0.relu1", "relu", "layer2.0.bn1"),
              conv("layer2.0.conv2", "layer2.0.relu1", c2, 3), unary("layer2.0.bn2", "batchnorm", "layer2.0.conv2"),
              conv("layer2.0.downsample.0", "layer1.0.relu2", c2, 1, stride=2),
              unary("layer2.0.downsample.1", "batchnorm", "layer2.0.downsample.0"),
              {"id": "layer2.0.add", "type": "add", "inputs": ["layer2.0.bn2", "layer2.0.downsample.1"]},
              unary("layer2.0.relu2", "relu", "layer2.0.add"), unary("flatten", "flatten", "layer2.0.relu2"),
              {"id": "fc", "type": "dense", "inputs": ["flatten"], "out_features": 10}]
    return {"name": "resnet_fashion_random", "input": [28, 28, 1], "output": "fc", "nodes": nodes}


def mixed():
    nodes = [conv("stem", "input", 6, 3), unary("stem_bn", "batchnorm", "stem"),
             unary("stem_act", "hardswish", "stem_bn"), unary("pool", "maxpool2d", "stem_act", kernel=2),
             conv("b_leaky", "pool", 3, 1), unary("b_leaky_act", "leaky_relu", "b_leaky", negative_slope=0.1),
             conv("b_relu6", "pool", 3, 3), unary("b_relu6_act", "relu6", "b_relu6"),
             conv("b_gelu", "pool", 3, 3), unary("b_gelu_act", "gelu", "b_gelu"),
             conv("b_tanh", "pool", 2, 1), unary("b_tanh_act", "tanh", "b_tanh"),
             conv("b_hsig", "pool", 2, 1), unary("b_hsig_act", "hardsigmoid", "b_hsig"),
             {"id": "mixed", "type": "concat",
              "inputs": ["b_leaky_act", "b_relu6_act", "b_gelu_act", "b_tanh_act", "b_hsig_act"]},
             conv("down", "mixed", 8, 3, stride=2), unary("down_bn", "batchnorm", "down"),
             unary("down_act", "silu", "down_bn"),
             conv("se.reduce", "down_act", 4, 7, padding=0), unary("se.act", "gelu", "se.reduce", approximate="tanh"),
             conv("se.expand", "se.act", 8, 1), unary("se.gate", "sigmoid", "se.expand"),
             {"id": "se.scale", "type": "mul", "inputs": ["down_act", "se.gate"]},
             {"id": "residual", "type": "add", "inputs": ["se.scale", "down_act"]},
             unary("flatten", "flatten", "residual"),
             {"id": "fc", "type": "dense", "inputs": ["flatten"], "out_features": 10}]
    return {"name": "mixed_fashion_random", "input": [28, 28, 1], "output": "fc", "nodes": nodes}


ARCHS = {"resnet": resnet, "mixed": mixed}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", choices=sorted(ARCHS), default="resnet")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    arch = ARCHS[args.arch]()
    model = GraphNet(arch)
    randomize_statistics(model, torch.Generator().manual_seed(args.seed))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, model.state_dict(), {"format": "pt", "architecture": json.dumps(arch)})
    print(f"{args.out}: {arch['name']}, {len(arch['nodes'])} nodes, seed {args.seed}")


if __name__ == "__main__":
    main()
