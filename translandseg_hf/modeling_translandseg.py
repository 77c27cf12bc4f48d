"""TransLandSegModel: prompt-free SAM with ATL adapters, saved and shared as adapter-only Hub files."""

from __future__ import annotations

import copy
import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from peft import PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from transformers import SamModel
from transformers.models.sam.modeling_sam import SamMaskDecoder

from .atl import ATL_PEFT_TYPE, STRUCTURE_FIELDS, ATLConfig, preset_name
from .atl.saved_shapes import header_shapes
from .cards import CardDetails, translandseg_details
from .configuration_translandseg import TransLandSegConfig
from .hub import is_local
from .io_utils import give_new_file_mode
from .losses import LossConfig
from .model_kinds import SAVED_FORMATS
from .sam_loading import SamSource, load_sam, sam_loading_options
from .sam_resizing import resize_sam
from .segmentation import SegmentationModel, SegmentationOutput

ADAPTER_CONFIG = SAVED_FORMATS["translandseg"].identifying_file  # adapter_config.json, as PEFT names it
ADAPTER_WEIGHTS = "adapter_model.safetensors"
BASE_MODEL_SUBFOLDER = "base_model"  # where a base without a Hub id or lasting path is saved beside its adapter


@dataclass
class TransLandSegOutput(SegmentationOutput):
    """
    loss (`torch.FloatTensor` of shape `()`, *optional*): BCE + Dice loss, when `labels` were given.
    logits (`torch.FloatTensor` of shape `(batch_size, 1, height, width)`): landslide logits at the input's size.
    low_res_logits (`torch.FloatTensor` of shape `(batch_size, 1, height / 4, width / 4)`): the mask decoder's output.
    iou_scores (`torch.FloatTensor` of shape `(batch_size, 1)`): SAM's mask-quality estimate (untrained here).
    """

    low_res_logits: Optional[torch.FloatTensor] = None
    iou_scores: Optional[torch.FloatTensor] = None


class TransLandSegModel(SegmentationModel):
    """
    SAM with ATL adapters (Hou et al. 2024), run prompt-free: no points, boxes or masks; one landslide mask.

    Trainable: the ATL layers, the mask decoder and the prompt encoder's no-mask embedding; of the decoder, the parts
    prompt-free output never uses (the IoU head and the hypernetwork MLPs of mask tokens 1-3) are frozen, so every
    trainable parameter gets a gradient and distributed training needs no `find_unused_parameters`.
    `bundle_base=True` saves the frozen base beside the adapter (always so for a base with no name to reload it by).
    """

    saved_files = (ADAPTER_CONFIG, ADAPTER_WEIGHTS)
    optional_files = (*SegmentationModel.optional_files, f"{BASE_MODEL_SUBFOLDER}/*")

    def __init__(self, peft_model: PeftModel, loss_config: Optional[LossConfig] = None, bundle_base: bool = False):
        super().__init__()
        self.peft_model = peft_model
        self.loss_config = loss_config or LossConfig()
        self.bundle_base = bundle_base
        freeze_unused_by_prompt_free_output(peft_model)
        self.set_image_processor()

    # ----------------------------------------------------------------------------------------------------- building
    @classmethod
    def from_sam(
        cls, base: SamSource, atl_config: Optional[ATLConfig] = None, revision: Optional[str] = None,
        image_size: Optional[int] = None, *, dtype=None, torch_dtype=None, device_map=None,
        attn_implementation: Optional[str] = None,
    ) -> "TransLandSegModel":
        """Add fresh ATL adapters to `base`: a Hub id, a local folder, a `SamModel` or an original `.pth` file.

        `image_size` (a multiple of 16, at least 64) resamples the base's position embeddings to that input side, so
        small images need not be magnified to SAM's 1024 px; the adapter records it and reloads the same way.
        `dtype` (`torch_dtype`), `device_map`, `attn_implementation`: how the base is loaded, as in transformers
        (`sam_loading.load_sam`); on a bf16 or fp16 base the ATL layers stay fp32, as PEFT keeps its adapters."""
        options = sam_loading_options(dtype, torch_dtype, device_map, attn_implementation)
        sam, base_name = load_sam(base, revision=revision, **options)
        sam = resize_sam(sam, sam.config.vision_config.image_size if image_size is None else image_size)
        # a copy: PEFT keeps the config it is given, and the caller's must not change with this model
        atl_config = copy.deepcopy(atl_config) if atl_config is not None else ATLConfig.from_preset("translandseg")
        atl_config.image_size = sam.config.vision_config.image_size
        with peft_reading_checkpointing_flag():
            peft_model = get_peft_model(sam, atl_config, revision=revision)
        atl_config.base_model_name_or_path = base_name  # after: PEFT records the SamModel's own (unresolved) name
        return cls(peft_model)

    @property
    def sam(self) -> SamModel:
        return self.peft_model.get_base_model()

    @property
    def atl_config(self) -> ATLConfig:
        return self.peft_model.peft_config[self.peft_model.active_adapter]

    @property
    def base_model_name_or_path(self) -> Optional[str]:
        """The Hub id or path that reloads the base; None for an in-memory or bundled base."""
        name = self.atl_config.base_model_name_or_path
        return None if name == BASE_MODEL_SUBFOLDER else name

    @base_model_name_or_path.setter
    def base_model_name_or_path(self, name: Optional[str]) -> None:
        self.atl_config.base_model_name_or_path = name

    @property
    def image_size(self) -> int:
        return self.sam.config.vision_config.image_size

    @property
    def input_channels(self) -> int:
        return 3 + self.atl_config.extra_bands

    @property
    def config(self) -> TransLandSegConfig:
        """As `PreTrainedModel.config`: what `config.json` holds (input side, channels, labels); the adapter's own
        settings are `atl_config`, the base's `sam.config`."""
        return self.transformers_config()

    # ----------------------------------------------------------------------------------------------------- running
    def forward(
        self, pixel_values: torch.Tensor, labels: Optional[torch.Tensor] = None, id: Optional[list[str]] = None,  # noqa: A002
    ) -> TransLandSegOutput:
        """pixel_values (B, 3 + extra_bands, S, S): RGB normalised as SAM expects, then any extra bands normalised per
        band (the image processor makes both); labels (B, 1, S, S) or (B, S, S) in {0, 1}; id: the sample ids that
        `data.collate_fn` passes along (so `model(**batch)` works, as `Trainer` calls it), not used."""
        size, channels = self.image_size, self.input_channels
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != (channels, size, size):
            raise ValueError(f"pixel_values must have shape (batch, {channels}, {size}, {size}) for this model, got "
                             f"{tuple(pixel_values.shape)}.")
        outputs = self.peft_model(pixel_values=pixel_values, multimask_output=False)
        low_res_logits = outputs.pred_masks[:, 0]  # (B, 1, S/4, S/4)
        logits = F.interpolate(low_res_logits, size=(size, size), mode="bilinear", align_corners=False)
        return TransLandSegOutput(
            loss=self.compute_loss(logits, labels), logits=logits, low_res_logits=low_res_logits,
            iou_scores=outputs.iou_scores[:, 0],
        )

    def activation_checkpointing_enable(self, **kwargs) -> None:
        """Recompute SAM's encoder blocks in backward; kwargs as `PreTrainedModel.activation_checkpointing_enable`."""
        self.sam.activation_checkpointing_enable(**kwargs)

    def activation_checkpointing_disable(self) -> None:
        """Keep the encoder's activations again (the default)."""
        self.sam.activation_checkpointing_disable()

    @property
    def is_activation_checkpointing(self) -> bool:
        return self.sam.is_activation_checkpointing

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Optional[dict] = None, **kwargs) -> None:
        """Alias of `activation_checkpointing_enable` (the older name), without transformers' deprecation warning."""
        self.activation_checkpointing_enable(activation_checkpointing_kwargs=gradient_checkpointing_kwargs, **kwargs)

    def gradient_checkpointing_disable(self) -> None:
        """Alias of `activation_checkpointing_disable`, without transformers' deprecation warning."""
        self.activation_checkpointing_disable()

    def parameter_counts(self) -> dict[str, int]:
        """Parameters as the model computes: base SAM + ATL (PEFT's frozen originals of trained copies excluded)."""
        counted = [(n, p) for n, p in self.peft_model.named_parameters() if ".original_module." not in n]
        return {
            "total": sum(p.numel() for _, p in counted),
            "trainable": sum(p.numel() for _, p in counted if p.requires_grad),
            "base": sum(p.numel() for n, p in counted if ".atl_adapters." not in n),
        }

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().cpu().contiguous() for name, p in self.named_parameters() if p.requires_grad}

    def load_weights(self, folder: Union[str, os.PathLike]) -> None:
        """A checkpoint's trained tensors into this live model; refused unless they are exactly this model's (PEFT
        loads a partial file or another preset's without a word)."""
        weights_file = Path(folder) / ADAPTER_WEIGHTS
        check_adapter_keys(weights_file, self.peft_model)
        set_peft_model_state_dict(self.peft_model, load_file(str(weights_file)))

    # ----------------------------------------------------------------------------------------------------- describing
    @property
    def display_name(self) -> str:
        return f"TransLandSeg ({preset_name(self.atl_config)})"

    def describe(self) -> dict[str, Any]:
        return {"model": "translandseg", "preset": preset_name(self.atl_config), "input_channels": self.input_channels}

    def _bundles_base(self) -> bool:
        return self.bundle_base or self.base_model_name_or_path is None

    def card_details(self) -> CardDetails:
        base = self.base_model_name_or_path
        hub_base = None if self._bundles_base() or base is None or is_local(base) else base
        config = self.atl_config
        return translandseg_details(self.display_name, base, hub_base,
                                    BASE_MODEL_SUBFOLDER if self._bundles_base() else None, preset_name(config),
                                    {key: getattr(config, key) for key in STRUCTURE_FIELDS}, self.image_size,
                                    config.extra_bands)

    # ----------------------------------------------------------------------------------------------------- saving
    def save_pretrained(self, save_directory: Union[str, os.PathLike], **kwargs) -> None:
        """`SegmentationModel.save_pretrained`; a bundled base is recorded by its absolute path, which PEFT's
        `AutoPeftModel` loads from any working directory (it passes the recorded name to `SamModel.from_pretrained`)."""
        with self._recording_bundled_base_as(str(Path(save_directory).resolve() / BASE_MODEL_SUBFOLDER)):
            super().save_pretrained(save_directory, **kwargs)

    def push_to_hub(self, repo_id: str, **kwargs) -> str:
        """`SegmentationModel.push_to_hub`; a bundled base is recorded as `base_model`, the folder's own (a Hub
        repository has no path; `from_pretrained` loads it, PEFT's `AutoPeftModel` cannot)."""
        with self._recording_bundled_base_as(BASE_MODEL_SUBFOLDER):
            return super().push_to_hub(repo_id, **kwargs)

    @contextmanager
    def _recording_bundled_base_as(self, name: str):
        """The outermost call names the bundled base (`push_to_hub` saves through `save_pretrained`)."""
        outermost = getattr(self, "_bundled_base_name", None) is None
        if outermost:
            self._bundled_base_name = name
        try:
            yield
        finally:
            if outermost:
                self._bundled_base_name = None

    def _save_pretrained(self, save_directory: Path) -> None:
        """`adapter_config.json` and `adapter_model.safetensors` (trainable tensors only), and the base if bundled."""
        # ATL changes no embedding: without save_embedding_layers=False PEFT looks the base's config up by name
        self.peft_model.save_pretrained(str(save_directory), save_embedding_layers=False)
        if self._bundles_base():
            name_bundled_base(save_directory / ADAPTER_CONFIG, getattr(self, "_bundled_base_name", None))
            save_base_sam(self.peft_model, save_directory / BASE_MODEL_SUBFOLDER)

    @classmethod
    def _from_folder(
        cls, folder: Path, base_model: Optional[SamSource] = None, revision: Optional[str] = None,
        is_trainable: bool = False, *, dtype=None, torch_dtype=None, device_map=None,
        attn_implementation: Optional[str] = None,
    ) -> "TransLandSegModel":
        """Base SAM + the ATL adapter saved in `folder`; `base_model` replaces the base the adapter names. The
        loading options are `from_sam`'s: they apply to the base, the adapter keeps PEFT's dtype rule."""
        options = sam_loading_options(dtype, torch_dtype, device_map, attn_implementation)
        config = ATLConfig.from_pretrained(str(folder))  # any PEFT type's; an ATL one held to its weights' shapes
        if config.peft_type != ATL_PEFT_TYPE:
            raise ValueError(f"{folder} holds a {config.peft_type} adapter, not an ATL adapter.")
        base = base_model if base_model is not None else config.base_model_name_or_path
        if base is None:
            raise ValueError(
                f"The adapter in {folder} was made from an in-memory SamModel and names no base: pass base_model=."
            )
        bundled = base_model is None and names_bundled_base(base, folder)
        sam, loaded_name = load_sam(folder / BASE_MODEL_SUBFOLDER if bundled else base,
                                    revision=None if base_model is not None else config.revision, **options)
        trained_size = getattr(config, "image_size", None)  # None in adapters saved before sizes were recorded
        sam = resize_sam(sam, sam.config.vision_config.image_size if trained_size is None else trained_size)
        check_adapter_matches_base(folder / ADAPTER_WEIGHTS, sam)
        with peft_reading_checkpointing_flag(), warnings.catch_warnings():
            # check_adapter_keys raises on what PEFT only warns of
            warnings.filterwarnings("ignore", message="Found missing adapter keys", category=UserWarning)
            peft_model = PeftModel.from_pretrained(sam, str(folder), is_trainable=is_trainable)
        check_adapter_keys(folder / ADAPTER_WEIGHTS, peft_model)
        if base_model is not None or bundled:  # a bundled base: named as the folder's own, wherever it was saved
            peft_model.peft_config[peft_model.active_adapter].base_model_name_or_path = (
                BASE_MODEL_SUBFOLDER if bundled else loaded_name)
        return cls(peft_model, bundle_base=bundled).eval()


@contextmanager
def peft_reading_checkpointing_flag():
    """PEFT 0.21's `PeftModel.__init__` reads `is_gradient_checkpointing`, which transformers 5 deprecates with a
    FutureWarning on every model built; users can do nothing about it, so it is silenced here and only here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def name_bundled_base(adapter_config: Path, name: Optional[str] = None) -> None:
    """Point a staged `adapter_config.json` at the bundled base (`name`, by default `base_model`), written as PEFT
    writes it (`PeftConfig.save_pretrained`: sorted keys, indent 2, no final newline), so the live config is never
    changed."""
    values = json.loads(adapter_config.read_text(encoding="utf-8"))
    values["base_model_name_or_path"] = name or BASE_MODEL_SUBFOLDER
    adapter_config.write_text(json.dumps(values, indent=2, sort_keys=True), encoding="utf-8")


def names_bundled_base(base: str, folder: Path) -> bool:
    """Whether a recorded base is the folder's bundled one: `base_model`, or an absolute path ending so (where the
    folder was saved; it loads from the folder's own copy even after the folder moved)."""
    return Path(base).name == BASE_MODEL_SUBFOLDER and (folder / BASE_MODEL_SUBFOLDER / "config.json").is_file()


def freeze_unused_by_prompt_free_output(peft_model: PeftModel) -> None:
    """Freeze what prompt-free SAM never trains in every mask decoder: the IoU head (its scores are outside the
    loss: no gradient) and the hypernetwork MLPs of mask tokens 1-3 (single-mask output keeps token 0: zero
    gradients). PEFT marks all of `modules_to_save` trainable; the parameter counts then say what trains."""
    for module in peft_model.modules():
        if isinstance(module, SamMaskDecoder):
            module.iou_prediction_head.requires_grad_(False)
            module.output_hypernetworks_mlps[1:].requires_grad_(False)


def save_base_sam(peft_model: PeftModel, folder: Path) -> None:
    """Save the frozen base SAM under transformers' own names, without the adapters PEFT put into it."""
    state_dict = {}
    for key, tensor in peft_model.get_base_model().state_dict().items():
        if ".atl_adapters." in key or ".modules_to_save." in key:
            continue
        state_dict[key.replace(".base_layer.", ".").replace(".original_module.", ".")] = tensor.detach().clone()
    for tied_key in SamModel._tied_weights_keys:  # transformers ties these again on load
        state_dict.pop(tied_key, None)
    folder.mkdir(parents=True, exist_ok=True)
    peft_model.get_base_model().config.save_pretrained(str(folder))
    save_file(state_dict, str(folder / "model.safetensors"), metadata={"format": "pt"})
    give_new_file_mode([folder / "model.safetensors"])


def check_adapter_keys(weights_file: Path, peft_model: PeftModel) -> None:
    """Refuse an adapter file whose tensors are not the model's, by name and shape: PEFT loads one with missing or
    extra tensors with at most a warning, and the layers it lacks keep fresh weights (a model that maps wrongly)."""
    expected = {key: list(tensor.shape)
                for key, tensor in get_peft_model_state_dict(peft_model, save_embedding_layers=False).items()}
    found = header_shapes(weights_file)
    reshaped = sorted(key for key in expected.keys() & found.keys() if expected[key] != list(found[key]))
    problems = [named_tensors(sorted(expected.keys() - found.keys()), "missing"),
                named_tensors(sorted(found.keys() - expected.keys()), "unexpected"),
                "; ".join(f"tensor {key!r} has shape {list(found[key])}, the model's {expected[key]}"
                          for key in reshaped[:MAX_NAMED_TENSORS])]
    problems = [problem for problem in problems if problem]
    if problems:
        raise ValueError(f"{weights_file}: {'; '.join(problems)}: the file is incomplete or was saved for another "
                         "model (another ATL preset or SAM); save or download the model again.")


MAX_NAMED_TENSORS = 5  # an error names at most this many tensors of each kind


def named_tensors(keys: list[str], what: str) -> str:
    """`tensor 'a' is missing`, or `tensors 'a', 'b' (and 3 more) are missing`; empty for no keys."""
    if not keys:
        return ""
    names = ", ".join(repr(key) for key in keys[:MAX_NAMED_TENSORS])
    more = f" (and {len(keys) - MAX_NAMED_TENSORS} more)" if len(keys) > MAX_NAMED_TENSORS else ""
    return f"tensor {names} is {what}" if len(keys) == 1 else f"tensors {names}{more} are {what}"


def check_adapter_matches_base(weights_file: Path, sam: SamModel) -> None:
    """A clear error for a truncated adapter file or one saved for another SAM architecture."""
    shapes = header_shapes(weights_file)
    expected = {"atl_adapters.down.weight": sam.config.vision_config.hidden_size,
                "mask_decoder.iou_token.weight": sam.config.mask_decoder_config.hidden_size}
    for key, shape in shapes.items():
        for suffix, width in expected.items():
            if key.endswith(suffix) and shape[1] != width:
                raise ValueError(
                    f"{weights_file} was saved for a SAM of hidden size {shape[1]} at {suffix.split('.')[0]}, but the "
                    f"base model has hidden size {width}: load it on the base it was trained on."
                )
