"""The `translandseg` command: one documented flag style (hyphens accepted too) and `--help` without torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from translandseg_hf.cli import build_parser, underscored_options


def test_every_flag_is_accepted_with_hyphens_or_underscores():
    hyphens = build_parser().parse_args(underscored_options(
        ["predict", "scene.tif", "--model", "m", "--output", "o", "--min-area", "25", "--batch-size", "2",
         "--on-error=stop"]))
    underscores = build_parser().parse_args(
        ["predict", "scene.tif", "--model", "m", "--output", "o", "--min_area", "25", "--batch_size", "2",
         "--on_error=stop"])
    assert vars(hyphens) == vars(underscores)
    assert (underscores.min_area, underscores.batch_size, underscores.on_error) == (25.0, 2, "stop")


def test_help_documents_the_underscore_spelling_only():
    text = build_parser()._subparsers._group_actions[0].choices["predict"].format_help()
    assert "--on_error" in text and "--min_area" in text and "--on-error" not in text


def test_values_and_the_end_of_options_are_left_alone():
    assert underscored_options(["--bands", "4,3,2", "--threshold", "-0.5", "--", "--not-a-flag"]) == [
        "--bands", "4,3,2", "--threshold", "-0.5", "--", "--not-a-flag"]


@pytest.mark.parametrize("module", ["translandseg_hf.cli", "translandseg_hf.training.config", "translandseg_hf"])
def test_commands_answer_help_without_importing_torch_or_peft(module):
    """What makes `--help` fast: the command modules import torch, transformers' models and PEFT only to run."""
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'peft', 'datasets') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_public_names_load_on_first_use_from_their_modules():
    code = ("import sys, translandseg_hf as t; before = 'torch' in sys.modules; "
            "from translandseg_hf import TransLandSegImageProcessor as P; "
            "from translandseg_hf.image_processing import TransLandSegImageProcessor as Q; "
            "name = 'TransLandSegImageProcessor'; print(before, P is Q, name in t.__all__ and name in dir(t))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True", "True"]


def test_unknown_names_are_refused_by_name():
    import translandseg_hf

    with pytest.raises(AttributeError, match="module 'translandseg_hf' has no attribute 'TransLandSegProcessor'"):
        translandseg_hf.TransLandSegProcessor  # noqa: B018


def test_atl_is_registered_whichever_of_peft_and_the_package_is_imported_first():
    for order in ("import translandseg_hf, peft", "import peft, translandseg_hf"):
        code = f"{order}; from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING as m; print('ATL' in m)"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert result.stdout.strip() == "True", order
