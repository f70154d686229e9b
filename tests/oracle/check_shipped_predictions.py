#!/usr/bin/python3
"""Independent oracle for a trained model: PyTorch reads the same .safetensors
file, classifies the Fashion-MNIST test set (read here with gzip + numpy, not
with igscope's reader), and must agree with `igscope eval` image by image.
Prints the agreement and both accuracies; fails below --min-agreement, when
igscope's reported accuracy is not that of its own predictions, or when
PyTorch's accuracy is below --min-accuracy (the model card's claim)."""
import argparse
import json
import subprocess
import sys
import os

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model  # noqa: E402
from idx import read_idx  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--igscope", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--min-agreement", type=float, default=0.999)
    ap.add_argument("--min-accuracy", type=float, default=0.0, help="fail when PyTorch's test accuracy is below this")
    args = ap.parse_args()

    out = subprocess.run([args.igscope, "eval", "--model", args.model, "--json", "--with-predictions"],
                         check=True, capture_output=True, text=True).stdout
    ours = json.loads(out)
    images = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    labels = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)

    torch.set_num_threads(2)
    model, _ = torch_model.load_model(args.model)
    preds = []
    with torch.no_grad():
        for b in range(0, len(images), 1000):
            x = torch_model.to_torch_input(images[b : b + 1000, :, :, None])
            preds.append(model(x).argmax(dim=1).numpy())
    torch_pred = np.concatenate(preds)
    our_pred = np.array(ours["predictions"])
    agreement = float((torch_pred == our_pred).mean())
    torch_acc = float((torch_pred == labels).mean())
    print(f"images {len(labels)}  agreement {agreement:.4%} ({int((torch_pred != our_pred).sum())} differ)  "
          f"igscope accuracy {ours['accuracy']:.4%}  PyTorch accuracy {torch_acc:.4%}")
    if agreement < args.min_agreement:
        sys.exit(f"agreement {agreement:.4%} below {args.min_agreement:.2%}")
    if abs(ours["accuracy"] - float((our_pred == labels).mean())) > 1e-12:
        sys.exit("igscope's reported accuracy does not match its own predictions")
    if torch_acc < args.min_accuracy:
        sys.exit(f"PyTorch accuracy {torch_acc:.4%} below {args.min_accuracy:.2%}")


if __name__ == "__main__":
    main()
