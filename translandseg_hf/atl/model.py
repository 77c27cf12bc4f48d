"""The ATL tuner: puts ATL layers into SAM's image encoder and leaves everything else frozen."""

from __future__ import annotations

from peft.tuners.tuners_utils import BaseTuner
from peft.utils import ModulesToSaveWrapper
from torch import nn

from .config import ATLConfig
from .layer import ATLEncoderLayer


class ATLModel(BaseTuner):
    """
    Adds ATL adapters (TransLandSeg, Hou et al. 2024) to a `transformers.SamModel`.

    Only the ATL layers train, plus the modules in `modules_to_save` (by default SAM's mask decoder and its no-mask
    embedding, which PEFT copies, trains and saves beside the adapter: one copy per adapter name).

    PEFT's adapter API works as for LoRA (`add_adapter`, `set_adapter`, `delete_adapter`, `disable_adapter`,
    `load_adapter`), except that ATL cannot be merged and `unload()` gives back SAM's original trained-in-full modules.

    Example:

        ```py
        >>> import translandseg_hf  # registers ATL with PEFT
        >>> from peft import get_peft_model
        >>> from transformers import SamModel
        >>> sam = SamModel.from_pretrained("facebook/sam-vit-large")
        >>> model = get_peft_model(sam, translandseg_hf.ATLConfig.from_preset("translandseg"))
        >>> model.print_trainable_parameters()
        ```
    """

    prefix: str = "atl_"
    tuner_layer_cls = ATLEncoderLayer
    target_module_mapping = {"sam": ["vision_encoder"]}

    def __init__(self, model: nn.Module, peft_config, adapter_name: str, **kwargs):
        # PEFT freezes every base parameter; `unload` thaws them again, as autograd takes other kernels (results
        # differ in the last bits) when no parameter requires a gradient.
        requires_grad = {name: p.requires_grad for name, p in model.named_parameters()}
        super().__init__(model, peft_config, adapter_name, **kwargs)
        self.requires_grad_before_wrapping = requires_grad

    @classmethod
    def _remove_adapter_name_from_key(cls, key: str, adapter_name: str) -> str:
        """`...atl_adapters.<name>.down.weight` -> `...atl_adapters.down.weight`: files load under any adapter name."""
        return key.replace(f".atl_adapters.{adapter_name}.", ".atl_adapters.")

    def _create_and_replace(
        self,
        peft_config: ATLConfig,
        adapter_name: str,
        target: nn.Module,
        target_name: str,
        parent: nn.Module,
        current_key: str,
    ) -> None:
        if isinstance(target, ATLEncoderLayer):  # a second adapter on the already wrapped encoder
            target.update_layer(adapter_name, peft_config)
            return
        if not hasattr(target, "patch_embed") or not hasattr(target, "layers"):
            raise ValueError(
                f"ATL targets SAM's image encoder (a SamVisionEncoder); {current_key!r} is a {type(target).__name__}."
            )
        new_module = ATLEncoderLayer(target, adapter_name, peft_config)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)
        self._replace_module(parent, target_name, new_module, target)

    def _check_merge_allowed(self) -> None:
        # Refuse before `merge_and_unload`/`merge_adapter` touch any module (the layer's `merge` refuses too).
        raise NotImplementedError("ATL adapters are non-linear bottlenecks and cannot be merged into SAM's weights.")

    def _replace_module(self, parent: nn.Module, child_name: str, new_module: nn.Module, child: nn.Module) -> None:
        # PEFT's version copies `child.weight` onto a module it unwraps, as for a Linear; SAM's encoder has none.
        if isinstance(new_module, ATLEncoderLayer):
            super()._replace_module(parent, child_name, new_module, child)
        else:
            setattr(parent, child_name, new_module)

    def unload(self) -> nn.Module:
        """Plain SAM as it was before wrapping: the ATL layers removed and SAM's own `modules_to_save` put back.

        PEFT's `unload` keeps the active adapter's trained copy of each module in `modules_to_save`; ATL's copies are
        part of the adapter (saved with it, used only while it is enabled), so they leave with it. Each parameter
        requires a gradient again where it did before wrapping.
        """
        for module in self.model.modules():
            if isinstance(module, ModulesToSaveWrapper):
                module.set_adapter([])  # an inactive wrapper unloads to its original module
        sam = super().unload()
        for name, parameter in sam.named_parameters():
            parameter.requires_grad_(self.requires_grad_before_wrapping.get(name, parameter.requires_grad))
        return sam
