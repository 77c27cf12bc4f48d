"""A saved adapter's config held to its weights before anything is built: the adapters' size follows the config
(bottleneck width squared, per middle layer, per block), so a folder whose `adapter_config.json` says
`bottleneck_dim: 6000` beside small weights would allocate hundreds of MB before PEFT found the mismatch. The
shapes come from the safetensors header alone; no tensor is read."""

from __future__ import annotations

import re
from pathlib import Path

from safetensors import safe_open

ADAPTER_WEIGHTS = "adapter_model.safetensors"  # PEFT's SAFETENSORS_WEIGHTS_NAME
DOWN = re.compile(r"atl_adapters\.down\.weight$")
MIDDLE = re.compile(r"atl_adapters\.middle\.(\d+)\.(\d+)\.(linear|conv)\.weight$")
BANDS = re.compile(r"atl_adapters\.band_embed\.weight$")
KINDS = {"linear": "m", "conv": "c"}


def header_shapes(weights_file: Path) -> dict[str, list[int]]:
    """Each tensor's shape, from the file's header; a ValueError naming the file if it is not safetensors."""
    try:
        with safe_open(str(weights_file), framework="pt") as handle:
            return {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except Exception as error:  # safetensors raises its own error types for a bad header
        raise ValueError(f"{weights_file} is not a readable safetensors file (truncated or corrupt?): {error}") from error


def saved_structure(shapes: dict[str, list[int]]) -> dict:
    """What the tensors say of the adapter: hidden size, bottleneck width, middle layer kinds (of block 0), conv
    kernel, extra bands. A field the file cannot tell (no conv layer: no kernel) is absent."""
    found = {}
    for key, shape in shapes.items():
        if DOWN.search(key) and len(shape) == 2:
            found["bottleneck_dim"], found["hidden_size"] = shape
        elif BANDS.search(key) and len(shape) == 4:
            found["extra_bands"] = shape[1]
        elif (match := MIDDLE.search(key)) and match[1] == "0":
            found.setdefault("layers", {})[int(match[2])] = KINDS[match[3]]
            if match[3] == "conv" and len(shape) == 4:
                found["conv_kernel_size"] = shape[-1]
    if "layers" in found:
        layers = found.pop("layers")
        found["middle_layers"] = [layers.get(index, "?") for index in range(max(layers) + 1)]
    return found


def check_saved_shapes(config, weights_file: Path) -> None:
    """Refuse an `ATLConfig` whose structure is not the one its weights file holds, naming the file, the field and
    both values, before the adapters are built."""
    saved = saved_structure(header_shapes(weights_file))
    if "bottleneck_dim" not in saved:
        raise ValueError(f"{weights_file} holds no ATL adapter (no atl_adapters.down.weight of 2 dimensions): the file "
                         "is incomplete or not an ATL adapter's.")
    width = config.bottleneck_dim or config.bottleneck_for(saved["hidden_size"])  # a set width: compared as written
    expected = {"bottleneck_dim": width, "middle_layers": config.middle_layers,
                "extra_bands": config.extra_bands, "conv_kernel_size": config.conv_kernel_size}
    saved.setdefault("extra_bands", 0)
    wrong = [f"{name} is {expected[name]!r} in adapter_config.json but {saved[name]!r} in the weights"
             for name in expected if name in saved and list_or(saved[name]) != list_or(expected[name])]
    if wrong:
        raise ValueError(f"{weights_file}: {'; '.join(wrong)}: the config was not saved with these weights; save or "
                         "download the model again.")


def list_or(value):
    return list(value) if isinstance(value, (list, tuple)) else value
