#!/usr/bin/env python
"""How long the commands take to answer `--help`: the package imports torch, transformers' models and PEFT only when a
command runs, not to describe itself.

    python benchmarks/cli_startup.py --runs 5

Each command runs in a fresh process `--runs` times; the table gives the median and the slowest wall time, beside the
time of a bare `python -c pass` and of importing torch, transformers' argument parser and PEFT for comparison.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"translandseg --help": 1.5, "translandseg predict --help": 1.5, "python recipes/train.py --help": 2.5}


def commands() -> dict[str, list[str]]:
    cli = shutil.which("translandseg") or ""
    entry = [cli] if cli else [sys.executable, "-m", "translandseg_hf.cli"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "translandseg --help": [*entry, "--help"],
        "translandseg predict --help": [*entry, "predict", "--help"],
        "python recipes/train.py --help": [sys.executable, str(ROOT / "recipes" / "train.py"), "--help"],
        "import transformers.HfArgumentParser": [sys.executable, "-c", "from transformers import HfArgumentParser"],
        "import torch": [sys.executable, "-c", "import torch"],
        "import peft": [sys.executable, "-c", "import peft"],
    }


def wall_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"wall time of {args.runs} fresh processes each, {sys.platform}, Python {sys.version.split()[0]}")
    print("| command | median (s) | slowest (s) | goal (s) |\n|---|---:|---:|---:|")
    for name, command in commands().items():
        times = wall_times(command, args.runs)
        goal = f"{GOALS[name]:.1f}" if name in GOALS else ""
        print(f"| `{name}` | {statistics.median(times):.2f} | {max(times):.2f} | {goal} |")


if __name__ == "__main__":
    main()
