"""The small things a new user meets first (issue 37, item 13): `translandseg --version`; every default shown once in
`--help` (the commands' and the recipes'); messages worded for people (a count of one in the singular, coordinates
in fixed point, the contract's overrides naming what they override, an unreachable Hub id named with what to do);
and a test run that shows its skip reasons and prints nothing of its own."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path
from importlib.metadata import version

import httpx
import numpy as np
import pytest
from huggingface_hub import constants
from huggingface_hub.errors import LocalEntryNotFoundError

import huggingface_hub
from conftest import ROOT, load_recipe
from helpers.datasets import write_png
from helpers.sentinel2 import GRID_10M, UTM_45N, rgb_digital_numbers, write_band_folder
from helpers.training import TINY
from translandseg_hf.cli import build_parser, main
from translandseg_hf.image_processing import TransLandSegImageProcessor
from translandseg_hf.inference.contract import with_overrides
from translandseg_hf.training.config import SECTIONS, make_parser

NO_DEFAULT = (None, argparse.SUPPRESS)  # nothing to show: unset, or no value at all (flags, nargs 0, are off)


def subcommands() -> dict[str, argparse.ArgumentParser]:
    return build_parser()._subparsers._group_actions[0].choices


def action_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """One option's lines of `--help`, on one line."""
    formatter = parser._get_formatter()
    formatter.add_argument(action)
    return " ".join(formatter.format_help().split())


def options_with_defaults():
    return [pytest.param(name, action.option_strings[0], id=f"{name} {action.option_strings[0]}")
            for name, parser in subcommands().items() for action in parser._actions
            if action.option_strings and action.nargs != 0 and not any(action.default is v for v in NO_DEFAULT)]


def test_version_prints_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"translandseg {version('translandseg-hf')}"


@pytest.mark.parametrize("command, option, shown", [
    ("predict", "--batch_size", "(default: 4)"), ("predict", "--threshold", "(default: 0.5)"),
    ("predict", "--on_error", "(default: skip)"), ("predict", "--progress", "(default: bars)"),
    ("export", "--opset", "(default: 17)"), ("app", "--port", "(default: 7860)"),
])
def test_predict_help_shows_the_defaults_the_issue_missed(command, option, shown):
    parser = subcommands()[command]
    action = next(a for a in parser._actions if option in a.option_strings)
    assert shown in action_help(parser, action)


@pytest.mark.parametrize("command, option", options_with_defaults())
def test_every_option_with_a_default_shows_it_once(command, option):
    parser = subcommands()[command]
    action = next(a for a in parser._actions if option in a.option_strings)
    assert len(re.findall(r"\(default", action_help(parser, action))) == 1, action_help(parser, action)


def recipe_parsers():
    evaluate, zero_shot = load_recipe("evaluate"), load_recipe("zero_shot")
    return {"train": make_parser(SECTIONS),
            "evaluate": make_parser((evaluate.EvaluationArguments, SECTIONS[3])),
            "zero_shot": make_parser((zero_shot.ZeroShotArguments, SECTIONS[3], SECTIONS[2]))}


def test_recipe_help_states_each_default_once_and_none_for_unset_keys():
    for name, parser in recipe_parsers().items():
        for action in parser._actions:
            text = action_help(parser, action)
            assert text.count("(default:") <= 1, f"{name}: {text}"
            assert "(default: None)" not in text, f"{name}: {text}"
    train = recipe_parsers()["train"]
    bottleneck = next(a for a in train._actions if "--atl_bottleneck_dim" in a.option_strings)
    assert action_help(train, bottleneck).endswith("Bottleneck width d (default: hidden size / reduction factor).")


@pytest.mark.parametrize("contract, overrides, notes", [
    (dict(scale="none"), dict(scale="percentile"), ["--scale percentile overrides the model's scale (none)"]),
    (dict(bands=[4, 3, 2], scale="divisor", divisor=10), dict(bands=(1, 2, 3), divisor=10),
     ["--bands 1,2,3 overrides the model's bands (4,3,2)"]),
    (dict(percentiles=(2, 98)), dict(percentiles=(1, 99.5)), ["--percentiles 1,99.5 overrides the model's "
                                                              "percentiles (2,98)"]),
    (dict(scale="divisor", divisor=10000), dict(divisor=255), ["--divisor 255 overrides the model's divisor (10000)"]),
])
def test_overrides_name_the_option_and_the_models_value_as_flags_are_written(contract, overrides, notes):
    assert with_overrides(TransLandSegImageProcessor(**contract), **overrides)[1] == notes


@pytest.mark.parametrize("epochs, note", [("2", "(1 older checkpoint deleted)"), ("3", "(2 older checkpoints deleted)")])
def test_rotated_checkpoints_are_counted_in_the_singular_too(tmp_path, capsys, epochs, note):
    load_recipe("train").main([*TINY, "--output_dir", str(tmp_path / "run"), "--checkpoint_total_limit", "1",
                               "--epochs", epochs])
    out = capsys.readouterr().out
    assert f"Checkpoints: the last 1 kept in {tmp_path / 'run' / 'checkpoints'} {note}." in out, out


def test_stack_bounds_outside_the_product_are_printed_in_fixed_point(rgb_model, tmp_path, capsys):
    product = write_band_folder(tmp_path / "bands", rgb_digital_numbers(40), UTM_45N, GRID_10M)
    assert main(["stack", "--model", str(rgb_model), "--sentinel2", str(product), "--bounds", "100.5,200,300,400",
                 "--output", str(tmp_path / "aoi.tif")]) == 2
    err = capsys.readouterr().err
    assert "--bounds 100.5,200,300,400 lie outside the product (300000, 3099600, 300400, 3100000 in EPSG:32645)" \
        in err and "e+0" not in err, err


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def unreachable(repo_id, **_):
    """What snapshot_download raises when the Hub cannot be reached and nothing is cached."""
    raise LocalEntryNotFoundError(f"Got: ConnectError: [Errno 101] Network is unreachable\nAn error happened while "
                                  f"trying to locate the files on the Hub ({repo_id})") \
        from httpx.ConnectError("[Errno 101] Network is unreachable")


@pytest.mark.parametrize("offline, why", [(True, r"while the Hub is offline \(HF_HUB_OFFLINE=1\)"),
                                          (False, "while the Hub could not be reached")])
def test_an_unreachable_hub_model_id_says_what_to_do(empty_hub_cache, monkeypatch, tmp_path, capsys, offline, why):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    if not offline:
        monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    image = write_png(tmp_path / "scene.png", np.zeros((40, 40, 3), np.uint8))
    assert main(["predict", str(image), "--model", "someone/landslides", "--output", str(tmp_path / "maps")]) in (1, 2)
    err = capsys.readouterr().err
    assert re.search(rf"error: someone/landslides is not a folder, and the Hub model someone/landslides is not in "
                     rf"the local Hugging Face cache \({re.escape(str(empty_hub_cache))}\) {why}; download it once "
                     r"online \(`hf download someone/landslides`, or run this again online\) or pass", err), err
    assert "Got:" not in err and "ConnectError" not in err


def test_pytest_shows_skip_reasons_and_no_test_prints_past_the_capture():
    pytest_config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert re.search(r"(^|\s)-r\w*s", pytest_config["addopts"]), pytest_config["addopts"]
    disabled = [path.name for path in (ROOT / "tests").rglob("test_*.py")
                if path != Path(__file__) and "capsys.disabled()" in path.read_text()]
    assert disabled == []
