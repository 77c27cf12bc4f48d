"""An exported folder (`translandseg export`) run by ONNX Runtime, shaped as the scene engine expects of a model:
`model(pixel_values).logits`, `image_size`, `input_channels`, `image_processor`, `.to(device)` and `.eval()`, so
`predict_file`, `predict_files` and `TileRunner` use it unchanged.

A torch module without parameters: `load_model` and the app pass it through as they pass any model. Its graph is
float32 (int8 weights if quantised): autocast (`--precision`) does not change what it computes.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

from ..hub import PathOrRepoId, read_json_config, resolve_model_folder
from ..contract_fields import MAX_TILE_SIDE, PREPROCESSOR_CONFIG
from ..image_processing import TransLandSegImageProcessor
from ..saved_contract import load_contract
from ..segmentation import SegmentationOutput
from . import ONNX_CONFIG, ONNX_MODEL

REQUIRED_CONFIG = ("input_name", "output_name", "image_size", "input_channels")
CONFIG_FIELDS = {"input_name": (str, "a string"), "output_name": (str, "a string"),
                 "image_size": (int, f"a whole number of px in 1-{MAX_TILE_SIDE}"),
                 "input_channels": (int, "a whole number of bands")}
CPU_PROVIDER, CUDA_PROVIDER = "CPUExecutionProvider", "CUDAExecutionProvider"
SPINNING = "0"  # onnxruntime's session.intra_op.allow_spinning: idle intra-op threads sleep (start_session says why)


class OnnxSegmentationModel(nn.Module):
    """Landslide logits from an exported `model.onnx`: on the CPU execution provider, or CUDA's where the device is
    a GPU and onnxruntime-gpu provides it. Inputs and outputs are torch tensors, on the caller's device."""

    def __init__(self, folder: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu"):
        super().__init__()
        self.folder = Path(folder)
        self.config = read_onnx_config(self.folder / ONNX_CONFIG)
        self.image_processor = TransLandSegImageProcessor(**load_contract(self.folder))
        check_contract(self.folder, self.image_processor, self.config)
        self.device = torch.device(device)
        self.session = start_session(self.folder / ONNX_MODEL, self.device)
        check_graph_input(self.folder / ONNX_MODEL, self.session, self.config)
        check_graph_output(self.folder / ONNX_MODEL, self.session, self.config)
        warn_if_over_tolerance(self.folder, self.config)
        self.train(False)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: PathOrRepoId, revision: Optional[str] = None,
                        device: Union[str, torch.device] = "cpu") -> "OnnxSegmentationModel":
        """An exported folder, local or a Hub repository (read from the cache when offline)."""
        folder = resolve_model_folder(path_or_repo_id, "an exported ONNX landslide model",
                                      required=[ONNX_MODEL, ONNX_CONFIG, PREPROCESSOR_CONFIG],
                                      allow_patterns=[f"{ONNX_MODEL}.data", "README.md"], revision=revision)
        return cls(folder, device)

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    @property
    def input_channels(self) -> int:
        return int(self.config["input_channels"])

    @property
    def quantization(self) -> Optional[str]:
        return self.config.get("quantization")

    @property
    def providers(self) -> list[str]:
        """The execution providers the session runs on, in order of preference."""
        return self.session.get_providers()

    def describe(self) -> dict[str, Any]:
        return {**self.config.get("model", {}), "backend": "onnxruntime", "quantization": self.quantization}

    def to(self, device: Union[str, torch.device, None] = None, dtype: Optional[torch.dtype] = None,
           non_blocking: bool = False) -> "OnnxSegmentationModel":
        """Run on `device` (a new session where its type changes); the graph's dtype is fixed."""
        if dtype not in (None, torch.float32):
            raise ValueError(f"{self.folder}: an exported ONNX model computes in float32; it cannot become {dtype}.")
        if device is not None and torch.device(device) != self.device:
            self.device = torch.device(device)
            self.session = start_session(self.folder / ONNX_MODEL, self.device)
        return self

    def train(self, mode: bool = True) -> "OnnxSegmentationModel":
        if mode:
            raise ValueError(f"{self.folder}: an exported ONNX model only predicts; train the torch model it came "
                             "from, then export it again.")
        return super().train(False)

    def forward(self, pixel_values: torch.Tensor, labels: Optional[torch.Tensor] = None) -> SegmentationOutput:
        """pixel_values (B, C, S, S) as the contract makes them -> logits (B, 1, S, S), float32, on their device."""
        size, channels = self.image_size, self.input_channels
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (channels, size, size):
            raise ValueError(f"pixel_values must have shape (batch, {channels}, {size}, {size}) for this model, got "
                             f"{tuple(pixel_values.shape)}.")
        if labels is not None:
            raise ValueError(f"{self.folder}: an exported ONNX model computes no loss; pass pixel_values only.")
        array = pixel_values.detach().to("cpu", torch.float32).contiguous().numpy()
        logits = self.session.run([self.config["output_name"]], {self.config["input_name"]: array})[0]
        if tuple(logits.shape) != (len(array), 1, size, size):
            raise ValueError(f"{self.folder / ONNX_MODEL} gave logits of shape {tuple(logits.shape)} for a batch of "
                             f"{len(array)}, not ({len(array)}, 1, {size}, {size}); export the model again.")
        return SegmentationOutput(logits=torch.from_numpy(logits).to(pixel_values.device))


def read_onnx_config(path: Path) -> dict[str, Any]:
    """`onnx_config.json`, read as any model JSON is (`hub.read_json_config`: size-capped, no JSON bombs), with the
    fields the runtime uses checked by name."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the folder was not written by `translandseg export`.")
    try:
        config = read_json_config(path)
    except ValueError as error:
        raise ValueError(f"{error} Export the model again with `translandseg export`.") from error
    missing = [key for key in REQUIRED_CONFIG if key not in config]
    if missing:
        raise ValueError(f"{path} lacks {missing}; export the model again with `translandseg export`.")
    for key, (kind, wanted) in CONFIG_FIELDS.items():
        value = config[key]
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and not 0 < value <= MAX_TILE_SIDE):
            raise ValueError(f"{path}: field {key}: expected {wanted}, got {value!r}; export the model again with "
                             "`translandseg export`.")
    return config


def warn_if_over_tolerance(folder: Path, config: dict[str, Any]) -> None:
    """Whoever maps with an export that was kept over its tolerance (`export --allow_quantization_error`) is told,
    as whoever exported it was: its maps are not quite the torch model's."""
    if config.get("within_tolerance") is not False:
        return
    difference, share = config.get("max_probability_difference"), config.get("flipped_pixel_share")
    figures = (f"max |probability difference| {difference:.3g}, {share:.2%} of pixels of another class than the "
               "torch model's" if all(isinstance(value, (int, float)) for value in (difference, share)) else "")
    warnings.warn(f"{folder} was exported {config.get('quantization') or 'fp32'} beyond its tolerance ({figures}; "
                  f"see its {ONNX_CONFIG}): map with an fp32 export for the model's own maps.", UserWarning,
                  stacklevel=3)


def check_contract(folder: Path, processor: TransLandSegImageProcessor, config: dict[str, Any]) -> None:
    if processor.input_size != config["image_size"] or len(processor.bands) != config["input_channels"]:
        raise ValueError(f"{folder}: {PREPROCESSOR_CONFIG} reads {len(processor.bands)} bands at "
                         f"{processor.input_size} px, but {ONNX_CONFIG} says the graph takes "
                         f"{config['input_channels']} at {config['image_size']} px; export the model again.")


def providers_for(device: torch.device) -> list:
    """CUDA's provider (then the CPU's, for any operator it lacks) on a GPU where onnxruntime has it; else the CPU's."""
    import onnxruntime

    if device.type != "cuda":
        return [CPU_PROVIDER]
    if CUDA_PROVIDER not in onnxruntime.get_available_providers():
        warnings.warn(f"onnxruntime {onnxruntime.__version__} has no {CUDA_PROVIDER} (install onnxruntime-gpu): "
                      f"the ONNX model runs on the CPU, not on {device}.", stacklevel=3)
        return [CPU_PROVIDER]
    return [(CUDA_PROVIDER, {"device_id": device.index or 0}), CPU_PROVIDER]


def start_session(path: Path, device: torch.device):
    """An onnxruntime session of `path`: all graph optimisations, and torch's intra-op thread count, which
    `predict` sets (`threads.use_intra_op_threads`), so `torch.set_num_threads` limits both alike. Its threads do not
    spin while they wait (SPINNING): spinning workers contend with the scene's reader and writer threads and with
    each other, and on a 2-core machine made one run in two of SAM ViT-B int8 1.6x slower (0.28 s a 256 px tile
    instead of 0.17 s; without spinning 0.17-0.18 s in every run; fp32 within 3% either way)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", SPINNING)
    try:
        return onnxruntime.InferenceSession(str(path), sess_options=options, providers=providers_for(device))
    except Exception as error:  # noqa: BLE001 - onnxruntime's errors (Fail, InvalidProtobuf, ...) derive from Exception
        raise ValueError(f"{path}: onnxruntime cannot load it ({error}); export the model again with "
                         "`translandseg export`.") from error


def check_graph_input(path: Path, session, config: dict[str, Any]) -> None:
    """The graph takes what onnx_config.json says: (batch, C, S, S) under the recorded input name."""
    inputs = {node.name: node.shape for node in session.get_inputs()}
    expected = [config["input_channels"], config["image_size"], config["image_size"]]
    shape = inputs.get(config["input_name"])
    if shape is None or len(shape) != 4 or list(shape[1:]) != expected:
        raise ValueError(f"{path} takes {inputs}, but {ONNX_CONFIG} says {config['input_name']} of (batch, "
                         f"{', '.join(map(str, expected))}); export the model again with `translandseg export`.")


def check_graph_output(path: Path, session, config: dict[str, Any]) -> None:
    """The graph gives one logit map at the input side, (batch, 1, S, S), under the recorded output name: a graph
    that gives another shape would be resized or cut into a map that looks right and is not. Named dimensions
    (the batch) are left to `forward`'s check of what it really gives."""
    outputs = {node.name: node.shape for node in session.get_outputs()}
    shape = outputs.get(config["output_name"])
    expected = [1, config["image_size"], config["image_size"]]
    fixed = shape is not None and len(shape) == 4 and all(
        not isinstance(got, int) or got == want for got, want in zip(shape[1:], expected))
    if not fixed:
        raise ValueError(f"{path} gives {outputs}, but the model takes {config['image_size']} px inputs, so "
                         f"{config['output_name']} must be (batch, 1, {config['image_size']}, {config['image_size']}); "
                         "export the model again with `translandseg export`.")
