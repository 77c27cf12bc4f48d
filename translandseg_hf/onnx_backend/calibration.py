"""Static int8 quantisation calibrated on the model's own inputs (`export --quantize int8 --calibration DATA`).

Dynamic quantisation measures each activation's range per call, from that call alone, and a trained SAM's
activations have outliers that make its steps coarse (the demo model: up to 0.89 in probability). Static
quantisation fixes every range once, from tiles made exactly as mapping makes them (`CalibrationTiles`: the model's
contract, its tiling, its normalisation), and ONNX Runtime then runs integer kernels throughout the quantised part.

What is quantised was measured on the demo model (`benchmarks/onnx_cpu.py --demo`; QDQ format, int8 weights per
output channel, uint8 activations: the x86 u8s8 kernels' pairing), quantising one part at a time, on 16 held-back
tiles (max |probability difference|, share of pixels changing class):

    the whole graph           0.80, 0.54%    (the mask decoder alone: 0.81, 0.52%)
    the image encoder         0.125, 0.073%  (without its neck: 0.081, 0.038%; nor patch embedding: 0.066, 0.035%)

So SAM's image encoder's weight-bearing operators (QUANTIZED_OP_TYPES with a constant weight: the blocks' qkv,
projection and MLP, the ATL adapters) are quantised, where nearly all the FLOPs are; the patch embedding, the neck,
the prompt encoder and the mask decoder (its two-way attention, upsampling and output) stay fp32, as do every
Softmax, LayerNormalization, GELU and the attention's activation-by-activation MatMuls. A graph without SAM's encoder
(a CNN baseline) has every weight-bearing operator quantised, and its check says whether that holds. A share of the
tiles (every HOLD_BACK_EVERY-th) is never calibrated on: the export is checked on them (`agreement`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

import numpy as np

if TYPE_CHECKING:  # not at run time: the calibration child (`main`) then loads neither torch nor transformers
    from ..image_processing import TransLandSegImageProcessor
from . import MAX_CALIBRATION_SECONDS, MAX_CALIBRATION_TILES  # calibration stops at either

HOLD_BACK_EVERY = 5  # every 5th tile is held back for the check (a scene's tiles do not overlap: other ground)
MIN_TILES = HOLD_BACK_EVERY  # at least one held-back tile and four calibration tiles
QUANTIZED_OP_TYPES = ("MatMul", "Gemm", "Conv")  # the rest (Softmax, LayerNorm, ConvTranspose, ...) stays fp32
SAM_ENCODER = "/vision_encoder/"  # node names of SAM's image encoder in the traced graph
FP32_IN_ENCODER = ("/neck/", "/patch_embed/")  # cheap (about 2% of ViT-B's FLOPs) and measured to matter
CHILD_GRACE_SECONDS = 1800.0  # beyond the calibration's own bound: loading, quantising and writing the graph
CALIBRATION_METHOD = "MinMax"  # the full range: percentile clipping cut SAM's attention outliers and moved masks
# The quantised operators' outputs stay float: onnxruntime then fuses DequantizeLinear -> MatMul (and its bias Add)
# into one MatMulIntegerToFloat kernel instead of QLinearMatMul -> QuantizeLinear/DequantizeLinear -> Add, which cost
# a third of the int8 graph's time on ViT-B at 256 px and moved outputs more (benchmarks/onnx_cpu.py).
EXTRA_OPTIONS = {"OpTypesToExcludeOutputQuantization": list(QUANTIZED_OP_TYPES)}


@dataclass(frozen=True)
class CalibrationTiles:
    """(N, C, S, S) pixel_values as the model takes them, and where they came from (for onnx_config.json)."""

    pixel_values: np.ndarray
    source: str

    def __post_init__(self):
        if self.pixel_values.ndim != 4 or len(self.pixel_values) < MIN_TILES:
            raise ValueError(f"{self.source}: gave {len(self.pixel_values)} tile(s) of the model's input; calibration "
                             f"needs at least {MIN_TILES} (1 in {HOLD_BACK_EVERY} is held back to check the "
                             "export): give a larger scene, more images, or a larger dataset.")

    def split(self) -> tuple[np.ndarray, np.ndarray]:
        """(calibration tiles, held-back tiles): every HOLD_BACK_EVERY-th tile held back."""
        held = np.zeros(len(self.pixel_values), bool)
        held[HOLD_BACK_EVERY - 1 :: HOLD_BACK_EVERY] = True
        return self.pixel_values[~held], self.pixel_values[held]


# What `export_onnx(calibration=...)` takes: the tiles, or what makes them from the model's contract.
Calibration = Union[CalibrationTiles, Callable[["TransLandSegImageProcessor"], CalibrationTiles]]


def evenly_spaced(count: int, limit: int) -> np.ndarray:
    """Indices of at most `limit` of `count` items, spread over all of them (a scene's tiles: all of its ground)."""
    return np.unique(np.linspace(0, count - 1, min(count, limit)).round().astype(int)) if count else np.zeros(0, int)


def tile_budget(max_tiles: int = MAX_CALIBRATION_TILES) -> int:
    """Tiles to make: the calibration tiles plus one held back per HOLD_BACK_EVERY - 1 of them."""
    if max_tiles < MIN_TILES - 1:
        raise ValueError(f"calibration tiles must be at least {MIN_TILES - 1}, got {max_tiles}.")
    return max_tiles + max_tiles // (HOLD_BACK_EVERY - 1)


def dataset_tiles(processor: TransLandSegImageProcessor, name: str, data_dir: Optional[str] = None,
                  max_tiles: int = MAX_CALIBRATION_TILES, **options) -> CalibrationTiles:
    """The training split of a dataset by name (`data.named`), made into pixel_values as training made them
    (`SamTransform`, without augmentation); the synthetic dataset at the model's input side."""
    from ..data import SamTransform
    from ..data.named import load_named_dataset

    if name == "synthetic":
        options = {"image_size": processor.input_size, "num_samples": 120, **options}  # the demo's dataset
    train = load_named_dataset(name, data_dir, **options)["train"]
    rows = train.select(evenly_spaced(len(train), tile_budget(max_tiles)).tolist())
    made = rows.with_transform(SamTransform(processor))[:]["pixel_values"] if len(rows) else []
    pixel_values = np.stack([np.asarray(tile, np.float32) for tile in made]) if made else np.zeros((0,), np.float32)
    return CalibrationTiles(pixel_values, f"{len(made)} images of the training split of dataset {name!r}")


class TileFeed:
    """ONNX Runtime's CalibrationDataReader over tiles: one tile per call, until they or the time run out."""

    def __init__(self, tiles: np.ndarray, input_name: str, seconds: float = MAX_CALIBRATION_SECONDS):
        self.tiles, self.input_name, self.seconds = tiles, input_name, seconds
        self.given, self.started = 0, time.monotonic()

    def get_next(self) -> Optional[dict]:
        late = time.monotonic() - self.started > self.seconds and self.given >= MIN_TILES - 1
        if self.given >= len(self.tiles) or late:
            return None
        self.given += 1
        return {self.input_name: np.ascontiguousarray(self.tiles[self.given - 1 : self.given], np.float32)}

    def rewind(self) -> None:  # onnxruntime may read the data twice (SmoothQuant); not used here
        self.given = 0


def nodes_to_quantize(path: Path) -> list[str]:
    """The weight-bearing nodes quantised (the module docstring says why): SAM's image encoder's, less its neck and
    patch embedding; in a graph without it, all of them."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {tensor.name for tensor in graph.initializer}
    constants |= {out for node in graph.node if node.op_type == "Constant" for out in node.output}
    weighted = [node.name for node in graph.node
                if node.op_type in QUANTIZED_OP_TYPES and any(name in constants for name in node.input)]
    encoder = [name for name in weighted if SAM_ENCODER in name and not any(part in name for part in FP32_IN_ENCODER)]
    return encoder or weighted


def quantize_calibrated(source: Path, target: Path, tiles: np.ndarray, input_name: str,
                        seconds: float = MAX_CALIBRATION_SECONDS, name: str = "") -> dict:
    """`source` (fp32) quantised into `target`, its activation ranges fitted on `tiles`; what was done, for
    onnx_config.json. The calibration runs in a child process (`python -m translandseg_hf.onnx_backend.calibration`):
    onnxruntime's calibration graph holds more than the model does (ViT-B peaked at 2.5 GB at 512 px and 7.0 GB at
    1024 px with `reductions_run_early`), and a child killed for memory becomes an error that says so,
    instead of the whole command vanishing. A process of its own, not multiprocessing's: a user's script without a
    `__main__` guard would be run again by a spawned child. `name`: the model as messages name it (default:
    `source`)."""
    with tempfile.TemporaryDirectory(dir=Path(target).parent) as scratch:
        tiles_path, answer_path = Path(scratch) / "tiles.npy", Path(scratch) / "answer.json"
        np.save(tiles_path, np.ascontiguousarray(tiles, np.float32))
        paths = [str(Path(path).resolve()) for path in (source, target, tiles_path)]
        command = [sys.executable, "-m", __name__, *paths, input_name, str(seconds), str(answer_path.resolve())]
        # The child imports this interpreter's modules (its sys.path, absolute, from a folder holding no package of
        # its own), and its temporary files (onnxruntime's calibration graph: GBs) go into `scratch`, removed below
        # even when the child is killed.
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join(os.path.abspath(path) for path in sys.path if path),
                       "TMPDIR": scratch, "TMP": scratch, "TEMP": scratch}
        try:
            child = subprocess.run(command, capture_output=True, encoding="utf-8", errors="replace", env=environment,
                                   cwd=scratch, timeout=seconds + CHILD_GRACE_SECONDS)
            exitcode, errors = child.returncode, child.stderr
        except subprocess.TimeoutExpired:
            exitcode, errors = None, ""
        answer = json.loads(answer_path.read_text()) if answer_path.is_file() else None
    if exitcode != 0 or not isinstance(answer, dict):
        raise RuntimeError(child_failure(name or source, exitcode, answer or last_line(errors), tiles.shape[-1]))
    return {"method": f"onnxruntime quantize_static, QDQ, {CALIBRATION_METHOD} ranges", **answer,
            "bounds": {"max_tiles": len(tiles), "max_seconds": seconds},
            "quantized_op_types": list(QUANTIZED_OP_TYPES), "weights": "int8, per output channel",
            "activations": "uint8, outputs of quantised operators kept float"}


def last_line(text: str) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def child_failure(source: Union[str, Path], exitcode: Optional[int], answer: Optional[str], side: int) -> str:
    """Why the calibration child gave no result: killed for memory, out of time, or its error."""
    if exitcode is not None and exitcode < 0 and -exitcode == signal.SIGKILL:
        return (f"{source}: calibrating int8 at {side} px ran out of memory (the system killed it): onnxruntime's "
                "calibration needs more than the model's memory (SAM ViT-B: 2.5 GB at 512 px, 7.0 GB at 1024 px; "
                "ViT-L and ViT-H more). Calibrate on a machine with more memory (the exported model then runs "
                "anywhere), or export without --calibration (dynamic int8, checked against its tolerance).")
    if exitcode is None:
        bound = MAX_CALIBRATION_SECONDS + CHILD_GRACE_SECONDS
        return (f"{source}: calibrating int8 took longer than its bound ({bound:g} s) and was stopped; nothing was "
                "written. Give fewer --calibration_tiles, or export on a faster machine.")
    if exitcode < 0:
        return f"{source}: calibrating int8 failed: the process was killed by {signal.Signals(-exitcode).name}."
    return f"{source}: calibrating int8 failed (exit status {exitcode}): {answer or 'no message'}"


@contextmanager
def reductions_run_early():
    """onnxruntime's calibration adds a ReduceMin and a ReduceMax on every tensor it calibrates, as graph outputs,
    and runs the graph in ORT's default order, which schedules them after the whole model: every calibrated tensor
    then stays alive to the end of each run (the whole child, ViT-B: 5.1 GB against 2.5 GB at 512 px; over 24 GB,
    killed, against 7.0 GB at 1024 px). In
    PRIORITY_BASED order each reduction runs as soon as its tensor exists and the tensor is freed; the ranges are the
    same to the bit (benchmarks/calibration_memory.py). The calibrator takes no session options, so in the
    calibration child its session is made as onnxruntime makes it (CalibraterBase.create_inference_session: no graph
    optimisation) plus that order; where a later onnxruntime has no such method, it is left as it is."""
    import onnxruntime
    from onnxruntime.quantization.calibrate import CalibraterBase

    original = getattr(CalibraterBase, "create_inference_session", None)
    if original is None:
        yield
        return

    def create_inference_session(self):
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.execution_order = onnxruntime.ExecutionOrder.PRIORITY_BASED
        self.infer_session = onnxruntime.InferenceSession(self.augmented_model_path, sess_options=options,
                                                          providers=self.execution_providers)

    CalibraterBase.create_inference_session = create_inference_session
    try:
        yield
    finally:
        CalibraterBase.create_inference_session = original


def calibrate(source: str, target: str, tiles_path: str, input_name: str, seconds: float) -> dict:
    """The child process's work: onnxruntime's static quantisation of `source`, the tiles read from `tiles_path`;
    what was done."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    logging.getLogger().setLevel(logging.ERROR)  # the quantiser logs each shape computation it leaves in float
    feed, chosen = TileFeed(np.load(tiles_path), input_name, seconds), nodes_to_quantize(Path(source))
    with reductions_run_early():
        quantize_static(
            source, target, feed, quant_format=QuantFormat.QDQ, op_types_to_quantize=list(QUANTIZED_OP_TYPES),
            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            nodes_to_quantize=chosen, calibrate_method=getattr(CalibrationMethod, CALIBRATION_METHOD),
            extra_options=dict(EXTRA_OPTIONS),
        )  # Not CalibMaxIntermediateOutputs: onnxruntime 1.32 drops the ranges it collected when it clears them
    return {"calibration_tiles": feed.given, "calibration_seconds": round(time.monotonic() - feed.started, 1),
            "quantized_nodes": len(chosen)}


def main(argv: Sequence[str]) -> int:
    """`python -m translandseg_hf.onnx_backend.calibration SOURCE TARGET TILES INPUT_NAME SECONDS ANSWER`."""
    source, target, tiles_path, input_name, seconds, answer_path = argv
    try:
        answer = calibrate(source, target, tiles_path, input_name, float(seconds))
    except Exception as error:  # noqa: BLE001 - onnxruntime's errors derive from Exception; the parent words them
        answer = f"{type(error).__name__}: {error}"
    Path(answer_path).write_text(json.dumps(answer), encoding="utf-8")
    return 0 if isinstance(answer, dict) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
