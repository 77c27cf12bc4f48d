"""Configuration of ATL (adaptive transfer learning) adapters, with the structures of the paper's Table IV."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from peft.config import PeftConfig

from .peft_type import add_peft_type
from .presets import ADAPTER_INPUTS, MIDDLE_LAYER_KINDS, PLACEMENTS, PRESETS  # noqa: F401 (re-exported)
from .saved_shapes import ADAPTER_WEIGHTS, check_saved_shapes

# `PeftType.ATL`, a member added to PEFT's enum (see `peft_type.py`): equal to the string "ATL" that configs save.
ATL_PEFT_TYPE = add_peft_type("ATL")
# Bounds of the fields the adapters' size follows (`ATLConfig.check_sizes`).
MAX_BOTTLENECK = 1280  # SAM ViT-H's hidden size, the widest SAM; `bottleneck_for` also holds d to the encoder's own
MAX_MIDDLE_LAYERS = 10  # twice Table IV's deepest stack (2 x m + 3 x c)
MAX_CONV_KERNEL = 7  # about twice the presets' 3, odd
MAX_EXTRA_BANDS = 64  # Landslide4Sense has 11 beyond RGB


@dataclass
class ATLConfig(PeftConfig):
    """
    Configuration of an [`ATLModel`]: one ATL layer `Omega_i(x) = L_up(MidLay_i(L_down(x))) + x` before each block of
    SAM's image encoder (Hou et al. 2024, eqs. 5-9), with the variants of the paper's ablation (Table IV).

    Use [`ATLConfig.from_preset`] for the named structures of the paper.
    """

    target_modules: Optional[Union[list[str], str]] = field(
        default="vision_encoder",
        metadata={"help": "The SAM image encoder to adapt (its blocks get one ATL layer each)."},
    )
    bottleneck_dim: Optional[int] = field(
        default=None,
        metadata={"help": "Width d of the bottleneck; None means hidden_size // reduction_factor (32 on ViT-L)."},
    )
    reduction_factor: int = field(
        default=32, metadata={"help": "Hidden size divided by the bottleneck width, used when bottleneck_dim is None."}
    )
    middle_layers: list[str] = field(
        default_factory=lambda: ["m"],
        metadata={"help": "Per-block middle layers, in order: 'm' (Linear+GELU) or 'c' (conv+LayerNorm+GELU)."},
    )
    conv_kernel_size: int = field(default=3, metadata={"help": "Kernel of the MidLay_c convolution on the token grid."})
    residual: bool = field(
        default=True, metadata={"help": "Omega(x) = ATL(x) + x (eq. 7) when True, Omega(x) = ATL(x) (eq. 15) when False."}
    )
    placement: str = field(
        default="outside",
        metadata={"help": "'outside': before each block (eq. 8); 'inside': on the attention output (eqs. 11-13)."},
    )
    adapter_input: str = field(
        default="block_input",
        metadata={
            "help": "'block_input': ATL reads the previous block's output (the equations); 'patch_embedding': every "
            "ATL reads the patch-embedding tokens (the authors' released code)."
        },
    )
    fft_branch: bool = field(
        default=False,
        metadata={"help": "Add the released code's handcrafted branch: Conv2d(FFT high-pass of the image) into L_down."},
    )
    fft_mask_ratio: float = field(
        default=0.25, metadata={"help": "Share of the spectrum's area zeroed around its centre by the FFT high-pass."}
    )
    extra_bands: int = field(
        default=0,
        metadata={"help": "Input bands beyond RGB (e.g. 11 for Landslide4Sense's other bands, slope and DEM): they "
                          "enter through a trainable band embedding added to the patch tokens, zero at the start."},
    )
    image_size: Optional[int] = field(
        default=None,
        metadata={"help": "SAM's input side the adapter was trained at; a base of another size is resampled to it "
                          "(position embeddings) when the adapter loads. None: the base's own size."},
    )
    modules_to_save: Optional[list[str]] = field(
        default_factory=lambda: ["mask_decoder", "prompt_encoder.no_mask_embed"],
        metadata={"help": "Modules trained in full and saved with the adapter: SAM's mask decoder and no-mask embedding."},
    )

    def __post_init__(self):
        super().__post_init__()
        self.peft_type = ATL_PEFT_TYPE
        if not self.middle_layers:
            raise ValueError("ATLConfig.middle_layers needs at least one layer ('m' or 'c').")
        unknown = [kind for kind in self.middle_layers if kind not in MIDDLE_LAYER_KINDS]
        if unknown:
            raise ValueError(f"Unknown middle layer kind(s) {unknown}; valid kinds are {list(MIDDLE_LAYER_KINDS)}.")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"Unknown placement {self.placement!r}; valid placements are {list(PLACEMENTS)}.")
        if self.adapter_input not in ADAPTER_INPUTS:
            raise ValueError(f"Unknown adapter_input {self.adapter_input!r}; valid values are {list(ADAPTER_INPUTS)}.")
        if self.adapter_input == "patch_embedding" and self.placement != "outside":
            raise ValueError("adapter_input='patch_embedding' (the released code's structure) needs placement='outside'.")
        if self.adapter_input == "patch_embedding" and not self.residual:
            raise ValueError("adapter_input='patch_embedding' adds the adapter to each block's input: it needs residual=True.")
        if self.fft_branch and self.adapter_input != "patch_embedding":
            raise ValueError("fft_branch=True is part of the released code's structure: set adapter_input='patch_embedding'.")
        self.check_sizes()
        if not 0.0 <= self.fft_mask_ratio < 1.0:
            raise ValueError(f"fft_mask_ratio must be in [0, 1), got {self.fft_mask_ratio}.")

    def check_sizes(self) -> None:
        """The fields the adapters' size follows, bounded: an `adapter_config.json` may be someone else's, and each
        is multiplied by every block of the encoder (the width squared, per middle layer)."""
        for name in ("bottleneck_dim", "reduction_factor", "conv_kernel_size", "extra_bands"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{name} must be a whole number, got {value!r}.")
        if self.bottleneck_dim is not None and not 1 <= self.bottleneck_dim <= MAX_BOTTLENECK:
            raise ValueError(f"bottleneck_dim must be from 1 to {MAX_BOTTLENECK} (the widest SAM's hidden size), got "
                             f"{self.bottleneck_dim}.")
        if not 1 <= self.reduction_factor <= MAX_BOTTLENECK:
            raise ValueError(f"reduction_factor must be from 1 to {MAX_BOTTLENECK}, got {self.reduction_factor}.")
        if len(self.middle_layers) > MAX_MIDDLE_LAYERS:
            raise ValueError(f"middle_layers holds {len(self.middle_layers)} layers; at most {MAX_MIDDLE_LAYERS} "
                             "(Table IV's deepest stack has 5).")
        if self.conv_kernel_size not in range(1, MAX_CONV_KERNEL + 1, 2):
            raise ValueError(f"conv_kernel_size must be odd, from 1 to {MAX_CONV_KERNEL} (the presets use 3; an even "
                             f"kernel would shift the token grid), got {self.conv_kernel_size}.")
        if not 0 <= self.extra_bands <= MAX_EXTRA_BANDS:
            raise ValueError(f"extra_bands must be from 0 to {MAX_EXTRA_BANDS}, got {self.extra_bands}.")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, subfolder: Optional[str] = None, **kwargs):
        """`PeftConfig.from_pretrained`, held to the weights beside it where the folder is local: PEFT's
        `PeftModel.from_pretrained` and `load_adapter` (and so `TransLandSegModel.from_pretrained`) read the config
        here and build the adapters from it before loading a tensor (`saved_shapes`)."""
        folder = Path(pretrained_model_name_or_path, subfolder or "")
        try:
            config = super().from_pretrained(pretrained_model_name_or_path, subfolder=subfolder, **kwargs)
        except ValueError as error:  # a field out of bounds (`check_sizes`): named with the file it came from
            raise ValueError(f"{folder / 'adapter_config.json'}: {error}") from error
        if isinstance(config, ATLConfig) and (folder / ADAPTER_WEIGHTS).is_file():  # (another PEFT type: its own)
            check_saved_shapes(config, folder / ADAPTER_WEIGHTS)
        return config

    @classmethod
    def from_preset(cls, name: str, **overrides) -> "ATLConfig":
        """The named structures of the paper's Table IV (and the authors' released code), optionally overridden."""
        if name not in PRESETS:
            raise ValueError(f"Unknown ATL preset {name!r}; valid presets are: {', '.join(PRESETS)}.")
        return cls(**{**PRESETS[name], **overrides})

    def bottleneck_for(self, hidden_size: int) -> int:
        """Bottleneck width d on an encoder of the given hidden size."""
        if self.bottleneck_dim is not None and self.bottleneck_dim > hidden_size:
            raise ValueError(f"bottleneck_dim {self.bottleneck_dim} is wider than the encoder's hidden size "
                             f"{hidden_size}: a bottleneck narrows it.")
        return self.bottleneck_dim or max(1, hidden_size // self.reduction_factor)


STRUCTURE_FIELDS = ("middle_layers", "residual", "placement", "adapter_input", "fft_branch", "bottleneck_dim")


def preset_name(config: ATLConfig) -> str:
    """The Table IV name of an ATL structure, or 'custom'."""
    for name in PRESETS:
        preset = ATLConfig.from_preset(name)
        if all(getattr(preset, key) == getattr(config, key) for key in STRUCTURE_FIELDS):
            return name
    return "custom"
