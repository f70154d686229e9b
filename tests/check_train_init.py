#!/usr/bin/python3
"""`igscope train --init` starts from the given model file: one epoch at a
learning rate of 1e-12 (the weights stay put) from the shipped fashion_cnn_v1
keeps its accuracy on the held-out images (a He-initialised start would be
at about 10%), and a file of another architecture is refused by name."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--igscope", required=True)
    args = ap.parse_args()
    model = os.path.join(ROOT, "model_weights", "fashion_cnn_v1.safetensors")
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        history = os.path.join(tmp, "history.json")
        # 2,000 images trained on (quick), 58,000 held out.
        subprocess.run([args.igscope, "train", "--arch", "fashion_cnn_v1", "--init", model, "--epochs", "1",
                        "--lr", "1e-12", "--validation", "58000", "--batch-size", "256", "--threads", "2",
                        "--out", os.path.join(tmp, "out.safetensors"), "--history", history],
                       check=True, capture_output=True)
        accuracy = json.load(open(history))[0]["validation_accuracy"]
        print(f"validation accuracy after one epoch from --init at lr 1e-12: {100 * accuracy:.2f}%")
        if accuracy < 0.85:
            failed.append(f"accuracy {accuracy:.4f} < 0.85: the run did not start from the file")
        wrong = subprocess.run([args.igscope, "train", "--arch", "fashion_resnet", "--init", model, "--epochs", "1",
                                "--out", os.path.join(tmp, "wrong.safetensors")], capture_output=True, text=True)
        print(f"another architecture: exit {wrong.returncode}: {wrong.stderr.strip()}")
        if wrong.returncode == 0 or "is not a fashion_resnet model" not in wrong.stderr:
            failed.append("a fashion_cnn_v1 file as --init of fashion_resnet was not refused")
    for f in failed:
        print(f"FAIL: {f}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
