"""Table III on the real ViT-L architecture, built on the meta device (no weights downloaded)."""

from __future__ import annotations

import subprocess
import sys

from translandseg_hf import PRESETS
from translandseg_hf.parameter_table import count_parameters

DECODER = 4_058_340  # SAM ViT-L's whole mask decoder
# Frozen in prompt-free TransLandSeg, as they never change its loss: the IoU head (Linear 256-256-256-4) and the
# hypernetwork MLPs of mask tokens 1-3 (each Linear 256-256-256-32; single-mask output keeps token 0's).
IOU_HEAD = 2 * (256 * 256 + 256) + (256 * 4 + 4)
UNUSED_HYPERNETWORKS = 3 * (2 * (256 * 256 + 256) + (256 * 32 + 32))


def test_sam_vit_l_and_official_structure_match_the_paper():
    assert count_parameters("vit_l", None)["total"] == 312_343_088
    official = count_parameters("vit_l", "translandseg-official")
    # the paper's "4.18M" (Table III) counts the whole decoder, the parts prompt-free SAM never trains included
    assert official["trainable"] + IOU_HEAD + UNUSED_HYPERNETWORKS == 4_175_140
    assert official["total"] == 312_343_088 + 116_544  # ATL: down, up, 24 middle layers, FFT conv
    assert round(official["total"] / 1e6, 2) == 312.46


def test_equation_structure_counts():
    decoder_and_no_mask = DECODER - IOU_HEAD - UNUSED_HYPERNETWORKS + 256
    # d = 32: L_down 1024*32+32, L_up 32*1024+1024, 24 x Linear(32, 32)
    atl = (1024 * 32 + 32) + (32 * 1024 + 1024) + 24 * (32 * 32 + 32)
    assert count_parameters("vit_l", "translandseg")["trainable"] == decoder_and_no_mask + atl


def test_cli_prints_every_preset():
    result = subprocess.run(
        [sys.executable, "-m", "translandseg_hf.cli", "params", "--architecture", "vit_b"],
        capture_output=True, text=True, check=True,
    )
    for name in PRESETS:
        assert f"| {name} |" in result.stdout
    assert "| SAM (full fine-tuning) | 93,735,728 |" in result.stdout
