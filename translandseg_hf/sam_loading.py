"""Load a SAM base model from a Hub id, a local folder, a `SamModel` or one of Meta's original `.pth` checkpoints."""

from __future__ import annotations

import os
import pickle
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional, Union

import torch
from transformers import SamConfig, SamModel, SamVisionConfig

from .console import interactive
from .hub import local_path, pickle_files, read_json_config, refusal

SamSource = Union[str, os.PathLike, SamModel]
LOADING_OPTIONS = ("dtype", "device_map", "attn_implementation")  # as `SamModel.from_pretrained` takes them

# Meta's names -> transformers' names, in the order transformers' `convert_sam_to_hf.py` applies them (that script is
# not shipped in the transformers wheel, so it is imported when present and this table is used otherwise).
_ORIGINAL_TO_HF_RENAMES = [
    ("iou_prediction_head.layers.0", "iou_prediction_head.proj_in"),
    ("iou_prediction_head.layers.1", "iou_prediction_head.layers.0"),
    ("iou_prediction_head.layers.2", "iou_prediction_head.proj_out"),
    ("mask_decoder.output_upscaling.0", "mask_decoder.upscale_conv1"),
    ("mask_decoder.output_upscaling.1", "mask_decoder.upscale_layer_norm"),
    ("mask_decoder.output_upscaling.3", "mask_decoder.upscale_conv2"),
    ("mask_downscaling.0", "mask_embed.conv1"),
    ("mask_downscaling.1", "mask_embed.layer_norm1"),
    ("mask_downscaling.3", "mask_embed.conv2"),
    ("mask_downscaling.4", "mask_embed.layer_norm2"),
    ("mask_downscaling.6", "mask_embed.conv3"),
    ("point_embeddings", "point_embed"),
    ("pe_layer.positional_encoding_gaussian_matrix", "shared_embedding.positional_embedding"),
    ("image_encoder", "vision_encoder"),
    ("neck.0", "neck.conv1"),
    ("neck.1", "neck.layer_norm1"),
    ("neck.2", "neck.conv2"),
    ("neck.3", "neck.layer_norm2"),
    ("patch_embed.proj", "patch_embed.projection"),
    (".norm", ".layer_norm"),
    ("blocks", "layers"),
]
_HYPERNETWORK_LAYER = re.compile(r"(.*output_hypernetworks_mlps\.\d+\.)layers\.(\d+)(\..*)")
_HYPERNETWORK_RENAMES = {"0": "proj_in", "1": "layers.0", "2": "proj_out"}


def rename_original_sam_keys(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a segment-anything state dict to `SamModel`'s parameter names."""
    try:  # transformers' own mapping, where the installed copy ships its conversion script
        from transformers.models.sam.convert_sam_to_hf import replace_keys

        return replace_keys(dict(state_dict))
    except ImportError:
        pass
    renamed = {}
    for key, value in state_dict.items():
        if key in ("pixel_mean", "pixel_std"):
            continue
        for old, new in _ORIGINAL_TO_HF_RENAMES:
            key = key.replace(old, new)
        match = _HYPERNETWORK_LAYER.match(key)
        if match:
            key = f"{match.group(1)}{_HYPERNETWORK_RENAMES[match.group(2)]}{match.group(3)}"
        renamed[key] = value
    renamed["shared_image_embedding.positional_embedding"] = renamed[
        "prompt_encoder.shared_embedding.positional_embedding"
    ]
    return renamed


def infer_sam_config(state_dict: dict[str, torch.Tensor]) -> SamConfig:
    """The `SamConfig` of a renamed SAM state dict, read from its tensor shapes (ViT-B/L/H or smaller)."""
    projection = state_dict["vision_encoder.patch_embed.projection.weight"]  # (hidden, 3, patch, patch)
    hidden_size, patch_size = projection.shape[0], projection.shape[-1]
    grid = state_dict["vision_encoder.pos_embed"].shape[1]
    depth = 1 + max(int(k.split(".")[2]) for k in state_dict if k.startswith("vision_encoder.layers."))
    rel_pos_lengths = [state_dict[f"vision_encoder.layers.{i}.attn.rel_pos_h"].shape[0] for i in range(depth)]
    head_dim = state_dict["vision_encoder.layers.0.attn.rel_pos_h"].shape[1]
    global_layers = [i for i, length in enumerate(rel_pos_lengths) if length == 2 * grid - 1]
    window_lengths = [length for length in rel_pos_lengths if length != 2 * grid - 1]
    vision = SamVisionConfig(
        hidden_size=hidden_size,
        num_hidden_layers=depth,
        num_attention_heads=hidden_size // head_dim,
        image_size=grid * patch_size,
        patch_size=patch_size,
        mlp_dim=state_dict["vision_encoder.layers.0.mlp.lin1.weight"].shape[0],
        output_channels=state_dict["vision_encoder.neck.conv1.weight"].shape[0],
        num_pos_feats=state_dict["shared_image_embedding.positional_embedding"].shape[1],
        global_attn_indexes=global_layers,
        window_size=(window_lengths[0] + 1) // 2 if window_lengths else 0,
    )
    embedding_channels = state_dict["mask_decoder.iou_token.weight"].shape[1]
    prompt = dict(
        hidden_size=embedding_channels,
        image_size=grid * patch_size,
        patch_size=patch_size,
        mask_input_channels=state_dict["prompt_encoder.mask_embed.conv2.weight"].shape[0],
    )
    decoder = dict(
        hidden_size=embedding_channels,
        mlp_dim=state_dict["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0],
        iou_head_hidden_dim=state_dict["mask_decoder.iou_prediction_head.proj_in.weight"].shape[0],
    )
    return SamConfig(vision_config=vision.to_dict(), prompt_encoder_config=prompt, mask_decoder_config=decoder)


def load_original_sam_checkpoint(path: Union[str, os.PathLike], config: Optional[SamConfig] = None,
                                 attn_implementation: Optional[str] = None) -> SamModel:
    """A `SamModel` from Meta's `sam_vit_{b,l,h}_*.pth`, read without unpickling code (`weights_only=True`).
    `attn_implementation` ("eager", "sdpa") is chosen when the model is built: SAM fixes its attention classes then."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SAM checkpoint {path} does not exist.")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # it needs more than tensors to unpickle: nothing of it runs
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        needs = f"would call {found.group(1)}" if found else "needs more than tensors"
        raise ValueError(
            f"Cannot read {path} as a SAM checkpoint (a plain state dict of tensors): unpickling it {needs}, which "
            "can run any code, so it is not loaded. Meta's checkpoints hold tensors only: download it again."
        ) from error
    except Exception as error:  # a corrupt or truncated file
        raise ValueError(f"Cannot read {path} as a SAM checkpoint (a plain state dict of tensors): {error}") from error
    if not isinstance(state_dict, dict) or "image_encoder.patch_embed.proj.weight" not in state_dict:
        raise ValueError(f"{path} is not one of Meta's SAM checkpoints: no 'image_encoder.patch_embed.proj.weight'.")
    state_dict = rename_original_sam_keys(state_dict)
    config = config or infer_sam_config(state_dict)
    chosen = {"attn_implementation": attn_implementation} if attn_implementation else {}
    model = SamModel._from_config(config, **chosen)
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    missing = [key for key in missing if key != "shared_image_embedding.positional_embedding"]
    if missing or unexpected:
        raise ValueError(f"{path} does not match SAM's layout: missing {missing[:5]}, unexpected {unexpected[:5]}.")
    model.name_or_path = str(path.resolve())
    return model.eval()


def sam_loading_options(dtype: Any = None, torch_dtype: Any = None, device_map: Any = None,
                        attn_implementation: Optional[str] = None) -> dict[str, Any]:
    """The options given of transformers' `dtype=` (a torch dtype, its name or "auto"; `torch_dtype=` is its older
    name), `device_map=` and `attn_implementation=` ("eager" or "sdpa" for SAM), for `load_sam`."""
    if dtype is not None and torch_dtype is not None:
        raise ValueError(f"Pass dtype= or torch_dtype= (its older name), not both: got {dtype} and {torch_dtype}.")
    options = {"dtype": torch_dtype if dtype is None else dtype, "device_map": device_map,
               "attn_implementation": attn_implementation}
    return {name: value for name, value in options.items() if value is not None}


def load_sam(base: SamSource, revision: Optional[str] = None, **options: Any) -> tuple[SamModel, Optional[str]]:
    """The base `SamModel` and the name that reloads it (None for an in-memory model). `options`: those of
    `sam_loading_options`, given to `SamModel.from_pretrained` for a folder or Hub id, applied to the built model
    for an in-memory SAM or a `.pth` file."""
    unknown = sorted(set(options) - set(LOADING_OPTIONS))
    if unknown:
        raise TypeError(f"Unknown SAM loading option(s) {unknown}: the options are {list(LOADING_OPTIONS)}.")
    if isinstance(base, SamModel):
        return adjust_built_sam(base, "The SamModel given", **options), None
    path = local_path(base, "a SamModel folder or an original SAM '.pth' checkpoint")
    if path is None:
        return sam_from_pretrained(str(base), revision, **options), str(base)
    if path.suffix == ".pth":
        model = load_original_sam_checkpoint(path, attn_implementation=options.get("attn_implementation"))
        return adjust_built_sam(model, str(path), **options), model.name_or_path
    if path.is_dir():
        return sam_from_pretrained(str(path), folder=path, **options), str(path.resolve())
    raise ValueError(f"{base} is neither a SamModel folder nor an original SAM '.pth' checkpoint.")


def sam_from_pretrained(name: str, revision: Optional[str] = None, folder: Optional[Path] = None,
                        **options: Any) -> SamModel:
    """`SamModel.from_pretrained` held to safetensors: without `use_safetensors=True`, transformers falls back to a
    `pytorch_model.bin`, which it unpickles. `folder`: the local folder `name` is, as `load_sam` decided (None for
    a Hub id), where a folder of pickles only is refused, saying why. `options`: `dtype`, `device_map`,
    `attn_implementation`, as transformers takes them."""
    if folder is not None and not any(folder.glob("*.safetensors")) and pickle_files(folder):
        raise FileNotFoundError(refusal(folder, "model.safetensors", pickle_files(folder)))
    if folder is not None and (folder / "config.json").is_file():
        read_json_config(folder / "config.json")  # a JSON bomb is refused by name before transformers reads it
    try:
        with loading_bars_on_terminal_only():
            return SamModel.from_pretrained(name, revision=revision, use_safetensors=True, **options).eval()
    except OSError as error:
        if "safetensors" not in str(error):
            raise
        raise OSError(f"{error} SAM bases are read from safetensors only: pickled weights (pytorch_model.bin) are "
                      "never loaded, because unpickling can run code.") from error


def adjust_built_sam(model: SamModel, source: str, dtype: Any = None, device_map: Any = None,
                     attn_implementation: Optional[str] = None) -> SamModel:
    """The loading options on a SAM already built (in memory, or read from a `.pth`), as `from_pretrained` would
    have loaded it: cast to `dtype` ("auto": as it is), moved to the one device `device_map` names."""
    built_with = model.config._attn_implementation
    if attn_implementation is not None and attn_implementation != built_with:
        raise ValueError(f"{source} was built with attn_implementation={built_with!r}: SamModel picks its attention "
                         f"classes when built, so {attn_implementation!r} is chosen when loading a SamModel folder or "
                         "Hub id, or by building the SamModel with it.")
    if dtype is not None and dtype != "auto":
        model = model.to(dtype=getattr(torch, dtype) if isinstance(dtype, str) else dtype)
    if device_map is not None:
        model = model.to(single_device(device_map, source))
    return model


def single_device(device_map: Any, source: str) -> torch.device:
    """The device a `device_map` puts a whole built model on: "auto" is the accelerator if there is one, else the
    CPU; a device name or index, or {"": device}, names it. A map over modules needs transformers' loading."""
    if isinstance(device_map, dict):
        if set(device_map) != {""}:
            raise ValueError(f"{source}: a device_map over modules ({device_map}) is applied when loading a SamModel "
                             "folder or Hub id; a built model goes to one device (a name, or {'': device}).")
        device_map = device_map[""]
    if device_map == "auto":
        return torch.accelerator.current_accelerator(check_available=True) or torch.device("cpu")
    return torch.device(device_map)


@contextmanager
def loading_bars_on_terminal_only():
    """transformers' "Loading weights" bar on a terminal only, as the package's own bars: in a log or the app's
    output it is a line of escape codes per load. A bar the user switched off stays off."""
    from transformers.utils import logging as transformers_logging

    if interactive() or not transformers_logging.is_progress_bar_enabled():
        yield
        return
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.enable_progress_bar()
