#!/usr/bin/env python
"""Tiles per second of TransLandSeg (SAM + ATL, prompt-free) on the CPU: torch eager fp32 beside onnxruntime fp32 and
int8 (`translandseg export`: `--quantize int8 --calibration DATA`, static, and without calibration, dynamic), with
the achieved GFLOP/s and their share of the CPU's peak, and a GOAL line (issue 42).

    python benchmarks/onnx_cpu.py --image_size 256 --batch_size 1 4 --repeats 7 --demo runs/demo/model
    python benchmarks/onnx_cpu.py --image_size 1024 --batch_size 1 --repeats 3 --warmup 1
    python benchmarks/onnx_cpu.py --sam tiny --image_size 64 --batch_size 1 --repeats 2   # a check that it runs

SAM ViT-B's shape with random weights (drawn at 0.02, so the encoder sees the image; nothing is downloaded), the
model's own input side; the int8 export is calibrated on synthetic landslide scenes made by the model's contract. Each
backend runs in a process of its own, as `predict` runs one (in one process, torch's memory and threads left from its
calls and from exporting slowed onnxruntime by up to 1.6x), and the backends are timed interleaved (A B C D A B C D
...), so a load that comes and goes falls on all of them alike; each reports its median with min-max (the parent's
clock, a pipe's round trip included: well under 1 ms); the load average before and after and each backend's intra-op
threads are printed, so a noisy run shows itself. Run it on a quiet machine. FLOPs are counted on one torch forward
pass of one tile (torch.utils.flop_counter; 2 per multiply-add) and hold for every backend. The peak is worked out
from /proc/cpuinfo and printed with its assumptions.

`--demo FOLDER` (the trained demo model, `runs/demo/model` after `bash scripts/demo.sh`): exported int8 calibrated
on its own training data (the synthetic dataset) and compared with torch on the tiles held back from calibration and
on synthetic scenes it never saw (`onnx_backend.agreement`): the GOAL line's mask agreement.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

BACKENDS = ("torch fp32", "onnxruntime fp32", "onnxruntime int8", "onnxruntime int8 dynamic")
EXPORTS = {"onnxruntime fp32": None, "onnxruntime int8": "calibrated", "onnxruntime int8 dynamic": "dynamic"}
FMA_UNITS = 2  # FMA pipes per core on current x86 server cores (Zen 4/5, Ice Lake and later Xeons): an assumption
CALIBRATION_SCENES = 40  # synthetic scenes for the random ViT-B's int8 ranges: 32 calibrate, 8 held back
GOAL_SPEEDUP, GOAL_UNCHANGED = 2.5, 0.995  # issue 42: int8 at >= 2.5x torch fp32, >= 99.5% of mask pixels unchanged


def interleaved_order(names: list[str], repeats: int, warmup: int) -> list[tuple[str, bool]]:
    """(backend, timed) in the order they run: `warmup` untimed rounds, then `repeats` timed ones, each round every
    backend once in the given order (A B A B ...)."""
    return [(name, round_ >= warmup) for round_ in range(warmup + repeats) for name in names]


def time_interleaved(calls: dict[str, Callable[[], object]], repeats: int, warmup: int,
                     clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds of each timed call, per backend, run in `interleaved_order`."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for name, timed in interleaved_order(list(calls), repeats, warmup):
        start = clock()
        calls[name]()
        if timed:
            times[name].append(clock() - start)
    return times


def spread(seconds: list[float]) -> tuple[float, float, float]:
    """(median, min, max) of a backend's timed calls."""
    return statistics.median(seconds), min(seconds), max(seconds)


def load_average() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg()) + " (1/5/15 min)"


def cpu_peak() -> tuple[float, str]:
    """cores x FMA units x fp32 lanes x 2 FLOPs x clock, from /proc/cpuinfo; (GFLOP/s, how it was worked out)."""
    text = Path("/proc/cpuinfo").read_text()
    flags = set(next(line for line in text.splitlines() if line.startswith("flags")).split(":")[1].split())
    mhz = max(float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz"))
    from translandseg_hf.onnx_backend.threads import physical_cores

    cores = physical_cores()  # the cores the threads run on: hyper-threads share a core's FMA units
    lanes, isa = (16, "avx512f") if "avx512f" in flags else (8, "avx2+fma") if {"avx2", "fma"} <= flags else (4, "sse")
    peak = cores * FMA_UNITS * lanes * 2 * mhz / 1000
    how = (f"{cores} cores x {FMA_UNITS} FMA units (assumed) x {lanes} fp32 lanes ({isa}) x 2 FLOPs per FMA x "
           f"{mhz / 1000:.3f} GHz (cpu MHz) = {peak:.0f} GFLOP/s; a core that runs AVX-512 on 256-bit halves (Zen 4) "
           "has half that")
    return peak, how


def random_sam(size: int, kind: str):
    """TransLandSeg on a random SAM of `kind` (vit_b, or tiny for a quick check) at `size` px."""
    import torch
    from transformers import SamModel

    from translandseg_hf import TransLandSegModel
    from translandseg_hf.image_processing import TransLandSegImageProcessor
    from translandseg_hf.sam_configs import sam_config, tiny_sam_config

    torch.manual_seed(0)
    sam = SamModel(sam_config("vit_b", size) if kind == "vit_b" else tiny_sam_config(image_size=size))
    with torch.no_grad():
        for module in sam.vision_encoder.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                torch.nn.init.normal_(module.weight, std=0.02)
    model = TransLandSegModel.from_sam(sam)
    model.set_image_processor(TransLandSegImageProcessor(input_size=size))
    return model.eval()


def flops_per_tile(model, size: int) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:  # not under no_grad: its module tracker then fails on the prompt encoder's outputs (torch 2.14)
        model(torch.randn(1, 3, size, size))
    return counter.get_total_flops()


def exported(model, folder: Path, how) -> Path:
    """The model exported as `how` asks (None: fp32; calibrated: static int8 on synthetic scenes; dynamic)."""
    from translandseg_hf.onnx_backend import export_onnx
    from translandseg_hf.onnx_backend.agreement import contract_batch
    from translandseg_hf.onnx_backend.calibration import CalibrationTiles

    calibration = None
    if how == "calibrated":
        tiles = contract_batch(model, CALIBRATION_SCENES).numpy()
        calibration = CalibrationTiles(tiles, f"{CALIBRATION_SCENES} synthetic scenes")
    return export_onnx(model, folder, quantize=how and "int8", check=False, calibration=calibration)


def backend_threads(backend) -> int:
    import torch

    session = getattr(backend, "session", None)
    return session.get_session_options().intra_op_num_threads if session is not None else torch.get_num_threads()


def backend_worker(connection, size: int, sam: str, folder: str | None) -> None:
    """One backend in a process of its own, as `predict` runs one: torch eager on the random SAM (the same seed, so
    the same weights) or an exported folder on onnxruntime. Answers ("tiles", array) with the probabilities,
    ("time",) with the seconds of one call on those tiles, None by exiting."""
    import numpy as np
    import torch

    from translandseg_hf.onnx_backend import OnnxSegmentationModel
    from translandseg_hf.onnx_backend.threads import use_intra_op_threads

    use_intra_op_threads()  # as predict does: torch and onnxruntime run the same intra-op threads
    backend = random_sam(size, sam) if folder is None else OnnxSegmentationModel(folder)
    connection.send(backend_threads(backend))
    tiles = None
    with torch.no_grad():
        while (message := connection.recv()) is not None:
            if message[0] == "tiles":
                tiles = torch.from_numpy(message[1])
                connection.send(torch.sigmoid(backend(tiles).logits).numpy().astype(np.float32))
            else:
                start = time.perf_counter()
                backend(tiles)
                connection.send(time.perf_counter() - start)


class Worker:
    """A `backend_worker` process and its end of the pipe; a worker that dies is an error naming it, never a hang."""

    def __init__(self, context, name: str, size: int, sam: str, folder: str | None):
        self.name, (self.connection, child) = name, context.Pipe()
        self.process = context.Process(target=backend_worker, args=(child, size, sam, folder), daemon=True)
        self.process.start()
        child.close()  # the worker's end lives in the worker only: its death is an end of file here
        self.threads = self.answer()

    def answer(self):
        while not self.connection.poll(1.0):
            if not self.process.is_alive():
                raise RuntimeError(f"the {self.name} worker died (exit status {self.process.exitcode})")
        try:
            return self.connection.recv()
        except EOFError:
            raise RuntimeError(f"the {self.name} worker died (exit status {self.process.exitcode})") from None

    def probabilities(self, tiles):
        self.connection.send(("tiles", tiles))
        return self.answer()

    def seconds(self) -> float:
        self.connection.send(("time",))
        return self.answer()

    def close(self) -> None:
        try:
            self.connection.send(None)
        except (BrokenPipeError, OSError):
            pass
        self.process.join(timeout=60)
        if self.process.is_alive():
            self.process.terminate()
        self.connection.close()


def measure_size(args, size: int) -> list[dict]:
    """Every backend at one input side, each in its own process (as `predict` runs one: no backend's threads or
    memory left in the way of another), each batch size timed interleaved (A B A B ...); the rows of the table."""
    import multiprocessing

    import numpy as np
    import torch

    model = random_sam(size, args.sam)
    flops, rows = flops_per_tile(model, size), []
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as scratch:
        folders = {"torch fp32": None}
        for name in [name for name in args.backends if name in EXPORTS]:
            start = time.perf_counter()
            folders[name] = str(exported(model, Path(scratch) / name.replace(" ", "-"), EXPORTS[name]))
            print(f"exported {name} at {size} px in {time.perf_counter() - start:.0f} s", flush=True)
        del model
        workers = {}
        try:
            for name in args.backends:
                workers[name] = Worker(context, name, size, args.sam, folders[name])
            probe = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)).numpy()
            probabilities = {name: worker.probabilities(probe) for name, worker in workers.items()}
            for batch in args.batch_size:
                tiles = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1)).numpy()
                for worker in workers.values():
                    worker.probabilities(tiles)
                before = load_average()
                times = time_interleaved({name: worker.seconds for name, worker in workers.items()}, args.repeats,
                                         args.warmup)
                print(f"  {size} px, batch {batch}: load average {before} before, {load_average()} after", flush=True)
                for name, worker in workers.items():
                    difference = float(np.abs(probabilities[name] - probabilities["torch fp32"]).max())
                    rows.append(dict(size=size, batch=batch, backend=name, seconds=spread(times[name]),
                                     threads=worker.threads, difference=difference, flops=flops))
        finally:
            for worker in workers.values():
                worker.close()
    return rows


def print_table(rows: list[dict], peak: float) -> None:
    torch_median = {(r["size"], r["batch"]): r["seconds"][0] for r in rows if r["backend"] == "torch fp32"}
    print("| input (px) | batch | backend | threads | s per call, median (min-max) | tiles/s | x torch | GFLOP/s | "
          "of peak | max abs prob diff |\n|---:|---:|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        median, low, high = r["seconds"]
        gflops = r["flops"] * r["batch"] / median / 1e9
        print(f"| {r['size']} | {r['batch']} | {r['backend']} | {r['threads']} | {median:.3f} ({low:.3f}-{high:.3f}) "
              f"| {r['batch'] / median:.3g} | {torch_median[(r['size'], r['batch'])] / median:.2f} | {gflops:.0f} | "
              f"{gflops / peak:.0%} | {r['difference']:.2g} |")


def demo_agreement(folder: str) -> dict:
    """The demo model exported int8, calibrated on its training data; its agreement with torch on the tiles held
    back from calibration (as recorded) and on synthetic scenes it never saw (seeds (37, i))."""
    import json

    import numpy as np
    import torch

    from translandseg_hf.auto import load_segmentation_model
    from translandseg_hf.onnx_backend import ONNX_CONFIG, OnnxSegmentationModel, export_onnx
    from translandseg_hf.onnx_backend.agreement import THRESHOLD, check_batch
    from translandseg_hf.onnx_backend.calibration import dataset_tiles

    model = load_segmentation_model(folder).eval()
    with tempfile.TemporaryDirectory() as scratch:
        output = export_onnx(model, Path(scratch) / "int8", quantize="int8", allow_quantization_error=True,
                             calibration=lambda processor: dataset_tiles(processor, "synthetic"))
        config = json.loads((output / ONNX_CONFIG).read_text())
        pixel_values, unseen = check_batch(model, "int8")
        with torch.no_grad():
            expected = torch.sigmoid(model(pixel_values).logits).numpy()
            got = torch.sigmoid(OnnxSegmentationModel(output)(pixel_values).logits).numpy()
    flipped = float(np.mean((got > THRESHOLD) != (expected > THRESHOLD)))
    return {"held_back": (config["max_probability_difference"], config["unchanged_pixel_share"],
                          config["difference_measured_on"]),
            "unseen": (float(np.abs(got - expected).max()), 1 - flipped, unseen)}


def real_scene_agreement(folder: str, scene: str) -> tuple:
    """The demo model exported int8, calibrated on tiles of a real `scene` it never saw; its agreement with torch on
    the other tiles of that scene, held back from calibration (as `translandseg export --calibration SCENE`)."""
    import json
    from functools import partial

    from translandseg_hf.auto import load_segmentation_model
    from translandseg_hf.inference.calibration_tiles import calibration_tiles
    from translandseg_hf.onnx_backend import ONNX_CONFIG, export_onnx

    model = load_segmentation_model(folder).eval()
    with tempfile.TemporaryDirectory() as scratch:
        output = export_onnx(model, Path(scratch) / "int8", quantize="int8", allow_quantization_error=True,
                             calibration=partial(calibration_tiles, scene))
        config = json.loads((output / ONNX_CONFIG).read_text())
    return config["max_probability_difference"], config["unchanged_pixel_share"], config["difference_measured_on"]


def goal_line(rows: list[dict], demo: dict | None) -> str:
    """int8's speed-up over torch eager fp32 at batch 1 at the smallest side timed, and the demo's agreement."""
    size = min(r["size"] for r in rows)
    median = {r["backend"]: r["seconds"][0] for r in rows if r["size"] == size and r["batch"] == 1}
    speed = (f"calibrated int8 {median['torch fp32'] / median['onnxruntime int8']:.2f}x torch eager fp32 at batch 1, "
             f"{size} px (goal >= {GOAL_SPEEDUP}x)" if {"torch fp32", "onnxruntime int8"} <= set(median)
             else f"no batch-1 int8 and torch timings at {size} px")
    if demo is None:
        return f"GOAL: {speed}; demo model not measured (--demo FOLDER)"
    held, unseen = demo["held_back"], demo["unseen"]
    real = [value for key, value in demo.items() if key.startswith("real scene")]
    real_text = "".join(f", {unchanged:.2%} on held-back tiles of a real scene calibrated on its other tiles (max "
                        f"|dp| {difference:.3f})" for difference, unchanged, _ in real)
    return (f"GOAL: {speed}; calibrated demo model: {held[1]:.2%} of mask pixels unchanged on held-back tiles "
            f"(max |dp| {held[0]:.3f}), {unseen[1]:.2%} on unseen synthetic scenes (max |dp| {unseen[0]:.3f})"
            f"{real_text} (goal >= {GOAL_UNCHANGED:.1%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image_size", type=int, nargs="+", default=[256, 1024], help="input sides, smallest first")
    parser.add_argument("--batch_size", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (each backend once per round)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS),
                        help="timed in this order in each round; torch fp32 is always one (the reference)")
    parser.add_argument("--sam", choices=["vit_b", "tiny"], default="vit_b", help="tiny: a check that this runs")
    parser.add_argument("--demo", help="a trained model folder (runs/demo/model): its calibrated int8 agreement")
    parser.add_argument("--real_scene", nargs="*", default=[], help="with --demo: real scenes it never saw (e.g. "
                        "../shared/data/sichuan/images/Landslide001.png), each calibrated on its own tiles and checked "
                        "on the others")
    args = parser.parse_args()
    if args.real_scene and not args.demo:
        parser.error("--real_scene measures the --demo model: give --demo FOLDER too")
    args.backends = ["torch fp32", *[name for name in args.backends if name != "torch fp32"]]

    import onnxruntime
    import torch

    peak, how = cpu_peak()
    print(f"CPU peak: {how}\nload average at start: {load_average()}")
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}; SAM {args.sam} + ATL (translandseg "
          f"preset), random weights; {args.repeats} timed round(s) after {args.warmup} warm-up round(s), backends "
          f"interleaved: {' / '.join(args.backends)}\n")
    rows = [row for size in args.image_size for row in measure_size(args, size)]
    print_table(rows, peak)
    demo = demo_agreement(args.demo) if args.demo else None
    if demo:
        demo.update({f"real scene {scene}": real_scene_agreement(args.demo, scene) for scene in args.real_scene})
        for where, (difference, unchanged, measured_on) in demo.items():
            print(f"demo model, calibrated int8, {where}: {unchanged:.3%} of mask pixels unchanged, max |probability "
                  f"difference| {difference:.3f} ({measured_on})")
    print(f"load average at end: {load_average()}")
    print(goal_line(rows, demo))


if __name__ == "__main__":
    main()
