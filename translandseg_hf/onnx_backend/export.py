"""Export a landslide model to ONNX: the whole prompt-free segmentation (pixel_values in, logits out, ATL adapters and
band embedding included) at the model's input side, with a dynamic batch axis, beside the model's contract.

The TorchScript exporter (`torch.onnx.export(..., dynamo=False)`) is used: with torch 2.14 the dynamo exporter fails
on SAM ViT-B's windowed attention (a view of a permuted tensor in its decompositions), while the traced graph matches
torch to 1e-7 in probability. Only the batch varies in the graph (side and channels are fixed), so the tracer's
warnings about sizes turned into constants are expected; each export is checked on a batch other than the traced one,
against its tolerance (`agreement`): an fp32 graph off torch is refused as broken, an int8 one that moves the map
more than int8's documented tolerance is refused unless its error is accepted, and then kept with a warning. int8 with
`calibration` is quantised statically (`calibration`) and checked on the tiles held back from calibrating; without,
dynamically, and checked on synthetic scenes.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from torch import nn

from ..io_utils import atomic_write_json, replace_folder, staging_dir_for
from . import DEFAULT_OPSET, ONNX_CONFIG, ONNX_MODEL, QUANTIZATIONS
from .agreement import CHECK_BATCH, THRESHOLD, TOLERANCES, Agreement, check_batch, compare
from .calibration import Calibration, CalibrationTiles, quantize_calibrated

PathLike = Union[str, os.PathLike]
INPUT_NAME, OUTPUT_NAME = "pixel_values", "logits"
TRACE_BATCH = 1  # checked on another batch size (agreement.CHECK_BATCH, 2): the batch axis must really be dynamic
EXPORTER = "torch.onnx.export (TorchScript)"


class LogitsOnly(nn.Module):
    """A model's forward as the graph holds it: pixel_values in, logits out (no loss, no other outputs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values).logits


def export_onnx(
    model: Union[PathLike, nn.Module],
    output_dir: PathLike,
    quantize: Optional[str] = None,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
    check: bool = True,
    allow_quantization_error: bool = False,
    calibration: Optional[Calibration] = None,
) -> Path:
    """Write `output_dir/model.onnx`, the model's `preprocessor_config.json` and `onnx_config.json`; the folder.

    `model`: a saved model (folder or Hub id) or a live one, of any kind. The folder appears complete or not at all
    (written beside it, then renamed into place); an existing non-empty one is replaced only with `overwrite`.
    `check`: run both on a check batch (`agreement`), record the difference, refuse an fp32 graph that is off, and
    an int8 one over int8's tolerance unless `allow_quantization_error` (then warn); a benchmark that measures the
    difference itself may skip these forward passes. `calibration` (int8 only): the tiles, or what makes them from
    the model's contract, that static quantisation fits its ranges on and is checked on (`calibration.py`)."""
    output = Path(output_dir)
    if quantize not in (None, *QUANTIZATIONS):
        raise ValueError(f"quantize must be one of {list(QUANTIZATIONS)} or None, got {quantize!r}.")
    if calibration is not None and quantize != "int8":
        raise ValueError("--calibration fits int8's activation ranges: give it with --quantize int8.")
    check_output_folder(output, overwrite)
    source = None if isinstance(model, nn.Module) else str(model)
    if source is not None:
        refuse_replacing_source(output, Path(source))
    model = torch_model(model)
    tiles = calibration_tiles(model, calibration)
    staging = staging_dir_for(output)
    try:
        agreement, calibrated = write_graph(model, staging, quantize, opset, check, tiles, name=source or str(output))
        within = None if agreement is None else judge(agreement, quantize, allow_quantization_error)
        model.image_processor.save_pretrained(str(staging))
        config = onnx_config(model, source, quantize, opset, agreement, within)
        atomic_write_json(staging / ONNX_CONFIG, {**config, "calibration": calibrated})
        replace_folder(staging, output)  # an existing folder is empty, or --overwrite was given
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def check_output_folder(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise ValueError(f"{output} is a file; --output is the folder to write model.onnx and its files into.")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise FileExistsError(f"{output} is not empty; choose a new folder or pass --overwrite.")


def refuse_replacing_source(output: Path, source: Path) -> None:
    """Replacing `output` must not delete the model being exported (its folder, or one inside `output`)."""
    if source.is_dir() and source.resolve().is_relative_to(output.resolve()):
        raise ValueError(f"{output} holds the model being exported ({source}); choose another --output.")


def torch_model(model: Union[PathLike, nn.Module]) -> nn.Module:
    """A live torch model: as given, or loaded from a saved folder or Hub id (never an already exported one)."""
    from .runtime import OnnxSegmentationModel

    if not isinstance(model, nn.Module):
        from ..auto import load_segmentation_model

        model = load_segmentation_model(model)
    if isinstance(model, OnnxSegmentationModel):
        raise ValueError(f"{model.folder} is already an exported ONNX model; export the torch model it came from "
                         f"({model.config.get('source') or 'named in its onnx_config.json'}).")
    dtypes = {parameter.dtype for parameter in model.parameters()}
    if dtypes - {torch.float32}:
        raise ValueError(f"The model's weights are {sorted(map(str, dtypes))}; export it in float32 (model.float()): "
                         "the graph takes and computes float32, and --quantize int8 makes its weights smaller.")
    return model


def calibration_tiles(model: nn.Module, calibration: Optional[Calibration]) -> Optional[CalibrationTiles]:
    """The calibration tiles, made by the model's contract where a maker is given, checked against its input."""
    if calibration is None:
        return None
    tiles = calibration if isinstance(calibration, CalibrationTiles) else calibration(model.image_processor)
    expected = (model.input_channels, model.image_size, model.image_size)
    if tuple(tiles.pixel_values.shape[1:]) != expected:
        raise ValueError(f"{tiles.source}: tiles of shape {tuple(tiles.pixel_values.shape[1:])}, but the model takes "
                         f"{expected}; make them with the model's own image processor.")
    return tiles


def write_graph(model: nn.Module, folder: Path, quantize: Optional[str], opset: int, check: bool,
                tiles: Optional[CalibrationTiles] = None, name: str = "") -> tuple[Optional[Agreement], Optional[dict]]:
    """Trace the model into `folder/model.onnx` (quantised if asked, calibrated on `tiles` where given); how far it
    is from torch on its check batch (None unless `check`), and what calibration did (None without). `name`: the
    model as messages name it."""
    target = folder / ONNX_MODEL
    traced = folder / "fp32" / ONNX_MODEL if quantize else target
    traced.parent.mkdir(exist_ok=True)
    was_training = model.training
    model.eval()
    calibrated, held_back = None, None
    try:
        trace(model, traced, opset)
        if quantize == "int8" and tiles is not None:
            calibrate, held_back = tiles.split()
            calibrated = {"source": tiles.source, **quantize_calibrated(traced, target, calibrate, INPUT_NAME,
                                                                          name=name),
                          "held_back_tiles": len(held_back)}
        elif quantize == "int8":
            quantize_int8(traced, target)
        if quantize:
            shutil.rmtree(traced.parent)
        return (measure(model, target, quantize, held_back, tiles and tiles.source) if check else None), calibrated
    finally:
        model.train(was_training)


def judge(agreement: Agreement, quantize: Optional[str], allow_quantization_error: bool) -> bool:
    """Whether the graph is within its tolerance; an fp32 graph that is not is broken (refused), an int8 one is
    refused unless its error is accepted (then a warning)."""
    over = TOLERANCES[quantize].exceeded_by(agreement)
    if not over:
        return True
    if quantize is None:
        raise ValueError(f"The exported graph's probabilities differ from torch's ({'; '.join(over)}) on "
                         f"{agreement.measured_on}: the export is wrong; please report it.")
    message = (f"{quantize} quantisation changes the model's map beyond its tolerance ({'; '.join(over)}) on "
               f"{agreement.measured_on}")
    if not allow_quantization_error:
        raise ValueError(f"{message}. Export in fp32 (leave out --quantize), or pass --allow_quantization_error "
                         "to write it anyway (the error is recorded in onnx_config.json).")
    warnings.warn(f"{message}; written as --allow_quantization_error asks (the error is recorded in "
                  f"{ONNX_CONFIG}).", UserWarning, stacklevel=3)
    return False


def trace(model: nn.Module, path: Path, opset: int) -> None:
    """The exporter puts the module it is given back in that module's mode after tracing: a wrapper left in training
    mode would leave the model's BatchNorm layers training (the baselines' outputs then differ)."""
    device = next(model.parameters()).device
    dummy = torch.randn(TRACE_BATCH, model.input_channels, model.image_size, model.image_size, device=device)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # sizes that are fixed in this graph
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(
            LogitsOnly(model).eval(), (dummy,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            opset_version=opset, dynamo=False, do_constant_folding=True,
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )


def quantize_int8(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic quantisation: int8 weights, activations quantised per call from their own range."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()  # the quantiser warns on the root logger for each integer shape computation it leaves
    level = root.level          # in float, and suggests a pre-processing whose shape inference fails on SAM's graph
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


def measure(model: nn.Module, path: Path, quantize: Optional[str], held_back: Optional[np.ndarray] = None,
            source: Optional[str] = None) -> Agreement:
    """Torch's and the graph's (onnxruntime, CPU provider) probabilities compared: on the tiles held back from
    calibration where given, else on the check batch of `quantize`."""
    import onnxruntime

    if held_back is not None:
        pixel_values = torch.from_numpy(np.ascontiguousarray(held_back, np.float32))
        measured_on = f"{len(held_back)} tiles held back from calibration ({source})"
    else:
        pixel_values, measured_on = check_batch(model, quantize)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    device = next(model.parameters()).device
    expected, got = [], []
    # Held-back tiles a few at a time (ViT-B's activations at 1024 px are GBs; static ranges do not depend on the
    # batch); the check batch in one call, as recorded before: dynamic ranges are the whole call's.
    for batch in pixel_values.split(CHECK_BATCH if held_back is not None else len(pixel_values)):
        with torch.no_grad():
            expected.append(torch.sigmoid(LogitsOnly(model)(batch.to(device)).float()).cpu().numpy())
        logits = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})[0]
        got.append(1 / (1 + np.exp(-logits.astype(np.float64))))
    return compare(np.concatenate(expected), np.concatenate(got), f"{measured_on}, CPUExecutionProvider against torch")


def onnx_config(model: nn.Module, source: Optional[str], quantize: Optional[str], opset: int,
                agreement: Optional[Agreement], within_tolerance: Optional[bool]) -> dict:
    """What was exported, and how far its output is from torch's: what `OnnxSegmentationModel` reads back."""
    import onnx
    import onnxruntime

    return {
        "source": source,  # the folder or Hub id exported; None for a model exported from memory
        "model": model.describe(),
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "image_size": int(model.image_size),
        "input_channels": int(model.input_channels),
        "dynamic_axes": ["batch"],
        "opset": opset,
        "quantization": quantize,
        "max_probability_difference": agreement and agreement.max_probability_difference,
        "flipped_pixel_share": agreement and agreement.flipped_pixel_share,  # class changed at flip_threshold
        "unchanged_pixel_share": agreement and 1 - agreement.flipped_pixel_share,  # the mask's pixels kept
        "flip_threshold": THRESHOLD,
        "difference_measured_on": agreement and agreement.measured_on,
        "tolerance": TOLERANCES[quantize].as_dict(),  # agreement.py says why these bounds
        "within_tolerance": within_tolerance,  # False: written anyway, as --allow_quantization_error asked
        "exporter": EXPORTER,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "onnxruntime_version": onnxruntime.__version__,
    }

