"""ATL layers (Hou et al. 2024, eqs. 5-15) and the PEFT tuner layer that runs them inside SAM's image encoder."""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import Callable, Optional

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch import nn
from transformers.models.sam.modeling_sam import SamVisionEncoder, SamVisionEncoderOutput
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import _CAN_RECORD_REGISTRY, capture_outputs, maybe_install_capturing_hooks

from .config import ATLConfig


class MidLayerLinear(nn.Module):
    """MidLay_m: Linear(d, d) + GELU on each token."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, d)
        return self.act(self.linear(x))


class MidLayerConv(nn.Module):
    """MidLay_c: Conv2d + LayerNorm + GELU on the (B, H, W, d) token grid, so neighbouring patches mix."""

    def __init__(self, dim: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.norm = nn.LayerNorm(dim)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, d)
        x = self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return self.act(self.norm(x))


def build_middle_layers(kinds: list[str], dim: int, kernel_size: int) -> nn.Sequential:
    """The stack L_i of one block, e.g. ['m', 'm', 'c', 'c', 'c'] for Table IV's 2 x m + 3 x c."""
    return nn.Sequential(*(MidLayerLinear(dim) if kind == "m" else MidLayerConv(dim, kernel_size) for kind in kinds))


def fft_high_pass(images: torch.Tensor, mask_ratio: float = 0.25) -> torch.Tensor:
    """|Re(IFFT(FFT(x) with a centred low-frequency square zeroed))|, as in the authors' released code."""
    height, width = images.shape[-2:]
    half_side = int(math.sqrt(height * width * mask_ratio) // 2)  # side = 2 * floor(sqrt(H * W * ratio) / 2)
    spectrum = torch.fft.fftshift(torch.fft.fft2(images.float(), norm="forward"), dim=(-2, -1))
    keep = torch.ones(height, width, device=images.device)
    keep[height // 2 - half_side : height // 2 + half_side, width // 2 - half_side : width // 2 + half_side] = 0
    spectrum = torch.fft.ifftshift(spectrum * keep, dim=(-2, -1))
    return torch.fft.ifft2(spectrum, norm="forward").real.abs().to(images.dtype)


class ATLAdapter(nn.Module):
    """
    All ATL layers of one adapter on one encoder: `L_down` (M -> d) and `L_up` (d -> M) shared by every block, as in
    the authors' code, and one middle stack `L_i` per block.
    """

    def __init__(self, hidden_size: int, num_blocks: int, patch_size: int, config: ATLConfig):
        super().__init__()
        dim = config.bottleneck_for(hidden_size)
        self.residual = config.residual
        self.fft_mask_ratio = config.fft_mask_ratio
        self.down = nn.Linear(hidden_size, dim)
        self.up = nn.Linear(dim, hidden_size)
        self.middle = nn.ModuleList(
            build_middle_layers(config.middle_layers, dim, config.conv_kernel_size) for _ in range(num_blocks)
        )
        self.fft_embed = nn.Conv2d(3, dim, patch_size, stride=patch_size) if config.fft_branch else None
        self.band_embed, self.band_project = None, None
        if config.extra_bands:  # bands beyond RGB: patches -> d -> hidden, added to SAM's frozen RGB patch tokens
            self.band_embed = nn.Conv2d(config.extra_bands, dim, patch_size, stride=patch_size)
            self.band_project = nn.Linear(dim, hidden_size)
            nn.init.zeros_(self.band_project.weight)  # zero at the start: a fresh model computes the RGB model
            nn.init.zeros_(self.band_project.bias)
        if self.residual:
            # Near-identity start: Omega(x) = 0 + x, so a fresh model computes plain SAM's output.
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def theta(self, index: int, bottleneck: torch.Tensor) -> torch.Tensor:
        """Theta_i = L_up(L_i(.)) on an input already projected by L_down (eqs. 5-6)."""
        return self.up(self.middle[index](bottleneck))

    def omega(self, index: int, hidden_states: torch.Tensor) -> torch.Tensor:
        """Omega_i(x) = Theta_i(L_down(x)) + x (eq. 7), or without the residual (eq. 15)."""
        adapted = self.theta(index, self.down(hidden_states))
        return adapted + hidden_states if self.residual else adapted

    def embed_bands(self, extra_bands: torch.Tensor) -> torch.Tensor:
        """(B, E, S, S) bands beyond RGB -> (B, H, W, hidden) tokens to add to the RGB patch tokens."""
        return self.band_project(self.band_embed(extra_bands).permute(0, 2, 3, 1))

    def embed_prompt_input(self, patch_tokens: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        """Released-code input of every adapter: L_down(patch tokens) + Conv(FFT high-pass(image)), (B, H, W, d)."""
        bottleneck = self.down(patch_tokens)
        if self.fft_embed is not None:
            handcrafted = self.fft_embed(fft_high_pass(pixel_values, self.fft_mask_ratio))  # (B, d, H, W)
            bottleneck = bottleneck + handcrafted.permute(0, 2, 3, 1)
        return bottleneck


def block_with_inside_atl(block: nn.Module, hidden_states: torch.Tensor, omega: Callable) -> torch.Tensor:
    """A SAM vision block with ATL on its attention output: x_T = Omega(x_A) + x', x_T + MLP(LN(x_T)) (eqs. 11-13).

    Adapted from transformers' models/sam/modeling_sam.py (SamVisionLayer.forward, v5.24)."""
    residual = hidden_states
    hidden_states = block.layer_norm1(hidden_states)
    if block.window_size > 0:
        height, width = hidden_states.shape[1], hidden_states.shape[2]
        hidden_states, padding_shape = block.window_partition(hidden_states, block.window_size)
    hidden_states, _ = block.attn(hidden_states=hidden_states)
    if block.window_size > 0:
        hidden_states = block.window_unpartition(hidden_states, block.window_size, padding_shape, (height, width))
    hidden_states = residual + omega(hidden_states)
    return hidden_states + block.mlp(block.layer_norm2(hidden_states))


class ATLEncoderLayer(nn.Module, BaseTunerLayer):
    """
    Wraps SAM's `SamVisionEncoder` and runs one ATL layer per block. The whole encoder is the tuner layer because the
    adapters share `L_down`/`L_up` across blocks and, in the released-code structure, read the patch embedding.
    """

    adapter_layer_names = ("atl_adapters",)
    other_param_names = ("atl_configs",)
    _can_record_outputs = SamVisionEncoder._can_record_outputs  # what `capture_outputs` records: SAM's own

    def __init__(self, base_layer: nn.Module, adapter_name: str, config: ATLConfig):
        super().__init__()
        self.base_layer = base_layer
        self.atl_adapters = nn.ModuleDict({})
        self.atl_configs: dict[str, ATLConfig] = {}
        self._active_adapter = adapter_name
        self.merged_adapters = []
        self.cast_input_dtype_enabled = True  # as LoRA's: `peft.helpers.disable_input_dtype_casting` turns it off
        # As PEFT's layers report their base layer's (`_get_in_out_features`): the image channels SAM's encoder reads
        # and the embedding channels its neck writes; the adapters work on the tokens between (hidden_size wide).
        self.in_features = base_layer.config.num_channels
        self.out_features = base_layer.config.output_channels
        self.update_layer(adapter_name, config)
        _CAN_RECORD_REGISTRY[self] = self._can_record_outputs  # PreTrainedModel.__init__ registers its own so
        self._output_capturing_hooks_installed = True  # the hooks live on the encoder's blocks: see `_adapted`

    @property
    def config(self):
        """The wrapped encoder's `SamVisionConfig` (`capture_outputs` reads its `output_*` defaults)."""
        return self.get_base_layer().config

    def update_layer(self, adapter_name: str, config: ATLConfig) -> None:
        vision_config = self.get_base_layer().config
        adapter = ATLAdapter(
            vision_config.hidden_size, vision_config.num_hidden_layers, vision_config.patch_size, config
        )
        self.atl_adapters[adapter_name] = adapter
        self.atl_configs[adapter_name] = config
        self._move_adapter_to_device_of_base_layer(adapter_name)  # leaves meta (low_cpu_mem_usage) adapters alone
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def _get_base_layer_device_and_dtype(self, base_layer: nn.Module):
        # PEFT reads `base_layer.weight`, which SamVisionEncoder lacks; its patch projection says where SAM lives.
        weight = base_layer.patch_embed.projection.weight
        return weight.device, weight.dtype

    def get_input_embeddings(self) -> nn.Module:
        """The wrapped encoder's patch embedding: `SamModel.get_input_embeddings` (used by PEFT's checks) asks here."""
        return self.get_base_layer().get_input_embeddings()

    def merge(self, *args, **kwargs) -> None:
        raise NotImplementedError("ATL adapters are non-linear bottlenecks and cannot be merged into SAM's weights.")

    def unmerge(self) -> None:
        # As PEFT's layers answer an unmerge with nothing merged (`ln_tuning`, `ia3`): a warning, not an error.
        warnings.warn("Already unmerged. Nothing to do: ATL adapters are never merged into SAM's weights.")

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> SamVisionEncoderOutput:
        if self.disable_adapters or not self.active_adapters:
            return self.get_base_layer()(self._base_input(pixel_values), **kwargs)
        return self._adapted(pixel_values, **kwargs)

    def _base_input(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The RGB channels in SAM's dtype, as transformers' CLIP embeddings cast pixels to their patch weights', so a
        bf16 or fp16 base takes the fp32 pixels a processor makes."""
        return pixel_values[:, :3].to(self._get_base_layer_device_and_dtype(self.get_base_layer())[1])

    def _in_adapter_dtype(self, adapter: ATLAdapter, function: Callable, *inputs: torch.Tensor,
                          dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """`function` of `adapter` on `inputs` cast to the adapter's dtype, its result cast to `dtype` (SAM's hidden
        states'): PEFT's rule (`lora.Linear.forward`), so the fp32 adapters `autocast_adapter_dtype` keeps on a bf16 or
        fp16 SAM run there. `peft.helpers.disable_input_dtype_casting` turns the input cast off, as for LoRA."""
        result = function(*(self._cast_input_dtype(x, adapter.down.weight.dtype) for x in inputs))
        return result if dtype is None else result.to(dtype)

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    def _adapted(self, pixel_values: torch.Tensor, **kwargs) -> SamVisionEncoderOutput:
        """SAM's encoder with the active ATL adapter; `output_hidden_states` / `output_attentions` are recorded by
        the hooks on the encoder's blocks and attentions, as SAM's own encoder records them.

        Adapted from transformers' models/sam/modeling_sam.py (SamVisionEncoder.forward, v5.24)."""
        encoder = self.get_base_layer()
        if any(kwargs.get(f"output_{key}", getattr(self.config, f"output_{key}", False))
               for key in self._can_record_outputs):
            maybe_install_capturing_hooks(encoder)  # once, whoever asks first (the encoder itself or this layer)
        rgb, extra = self._base_input(pixel_values), pixel_values[:, 3:]  # (B, 3, S, S) to SAM, (B, E, S, S) to ATL
        if len(self.active_adapters) != 1:
            raise ValueError(f"ATL runs one adapter at a time, got active adapters {self.active_adapters}.")
        name = self.active_adapters[0]
        adapter, config = self.atl_adapters[name], self.atl_configs[name]

        if extra.shape[1] != config.extra_bands:
            raise ValueError(f"Adapter {name!r} takes RGB + {config.extra_bands} extra band(s), got "
                             f"{pixel_values.shape[1]} channels.")
        patch_tokens = encoder.patch_embed(rgb)  # (B, H, W, C)
        if adapter.band_embed is not None:
            patch_tokens = patch_tokens + self._in_adapter_dtype(adapter, adapter.embed_bands, extra,
                                                                 dtype=patch_tokens.dtype)
        hidden_states = patch_tokens if encoder.pos_embed is None else patch_tokens + encoder.pos_embed
        prompt_input: Optional[torch.Tensor] = None
        if config.adapter_input == "patch_embedding":
            prompt_input = self._in_adapter_dtype(adapter, adapter.embed_prompt_input, patch_tokens, rgb)  # (B,H,W,d)

        for index, block in enumerate(encoder.layers):
            if prompt_input is not None:  # released code: x + L_up(L_i(L_down(tokens) + fft))
                theta = self._in_adapter_dtype(adapter, partial(adapter.theta, index), prompt_input,
                                               dtype=hidden_states.dtype)
                hidden_states = block(hidden_states + theta)
            elif config.placement == "inside":
                block_input = hidden_states
                omega = partial(self._in_adapter_dtype, adapter, partial(adapter.omega, index),
                                dtype=hidden_states.dtype)
                hidden_states = _checkpointed(block, block_with_inside_atl, block, hidden_states, omega)
                hidden_states = _run_forward_hooks(block, block_input, hidden_states)
            else:  # Phi_i = block_i(Omega_i(Phi_{i-1})) (eq. 8)
                omega = self._in_adapter_dtype(adapter, partial(adapter.omega, index), hidden_states,
                                               dtype=hidden_states.dtype)
                hidden_states = block(omega)
        return SamVisionEncoderOutput(last_hidden_state=encoder.neck(hidden_states))


def _run_forward_hooks(block: nn.Module, block_input: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """The block's forward hooks (those recording hidden states among them), as `block(block_input)` would have run
    them: the inside placement computes the block without calling it."""
    for hook in block._forward_hooks.values():
        result = hook(block, (block_input,), output)
        output = output if result is None else result
    return output


def _checkpointed(block: nn.Module, function: Callable, *args):
    """Run `function` under the block's gradient checkpointing when transformers enabled it on that block."""
    if getattr(block, "gradient_checkpointing", False) and block.training:
        return block._gradient_checkpointing_func(function, *args)
    return function(*args)
