"""The ATL structures a configuration or a command can name (the paper's Table IV), as plain data: importing this loads
neither torch nor PEFT, so `--help` and config parsing stay fast."""

MIDDLE_LAYER_KINDS = ("m", "c")  # MidLay_m = Linear + GELU, MidLay_c = conv + LayerNorm + GELU
PLACEMENTS = ("outside", "inside")  # before the block (eq. 8) or on the attention output inside it (eqs. 11-13)
ADAPTER_INPUTS = ("block_input", "patch_embedding")  # the paper's equations / the authors' released code

# Table IV of Hou et al. 2024; `translandseg-official` is the structure of the authors' released code.
PRESETS: dict[str, dict] = {
    "translandseg": dict(middle_layers=["m"], residual=True, placement="outside"),
    "translandseg-1": dict(middle_layers=["c", "c", "c"], residual=True, placement="outside"),
    "translandseg-2": dict(middle_layers=["c", "c"], residual=True, placement="outside"),
    "translandseg-3": dict(middle_layers=["c", "c"], residual=False, placement="outside"),
    "translandseg-4": dict(middle_layers=["m", "m"], residual=True, placement="outside"),
    "translandseg-5": dict(middle_layers=["m", "m", "c", "c", "c"], residual=True, placement="outside"),
    # The printed marks of this row are ambiguous; the text compares it with -5 for placement only.
    "translandseg-6": dict(middle_layers=["m", "m", "c", "c", "c"], residual=True, placement="inside"),
    "translandseg-7": dict(middle_layers=["m"], residual=False, placement="outside"),
    "translandseg-8": dict(middle_layers=["m"], residual=True, placement="inside"),
    "translandseg-official": dict(
        middle_layers=["m"], residual=True, placement="outside", adapter_input="patch_embedding", fft_branch=True
    ),
}
