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


# ------------------------------------------------------------------------------------------ one way to end: exit statuses
def test_help_states_the_exit_statuses_errors_py_returns():
    from translandseg_hf import errors

    epilog = build_parser().format_help().split("Exit statuses", 1)[1]
    stated = {int(line.split()[0]) for line in epilog.splitlines() if line[:3].strip().isdigit()}
    assert stated == {errors.EXIT_DONE, errors.EXIT_FAILED, errors.EXIT_REFUSED, errors.EXIT_HELD,
                      errors.EXIT_INTERRUPTED} == {0, 1, 2, 3, 130}


def test_a_command_ends_with_one_error_line_and_its_status(capsys):
    from translandseg_hf.errors import RunFailed, failures_of_the_run, run_command

    def failing():
        with failures_of_the_run(ValueError):
            raise ValueError("scene.tif: not a raster")

    assert run_command(failing) == 1
    assert run_command(lambda: (_ for _ in ()).throw(FileExistsError("out: not empty"))) == 2
    assert run_command(lambda: 3) == 3
    assert capsys.readouterr().err == "error: scene.tif: not a raster\nerror: out: not empty\n"
    with pytest.raises(KeyError):  # anything else is a bug: its traceback is kept
        run_command(lambda: {}["missing"])
    with pytest.raises(RunFailed, match="^boom$"), failures_of_the_run():
        raise RuntimeError("boom")


def test_a_refused_command_exits_2_with_one_error_line(tmp_path, capsys):
    from translandseg_hf.cli import main

    taken = tmp_path / "a-file"
    taken.write_text("not a folder")
    assert main(["qgis-plugin", "--output", str(taken)]) == 2
    assert capsys.readouterr().err == (f"error: {taken} is a file: give a folder for the plugin (it is made if "
                                       "missing).\n")


def test_the_app_defaults_are_the_apps_own():
    from translandseg_hf import app, cli
    from translandseg_hf.app import ui

    assert (cli.APP_MAX_PIXELS, cli.APP_MAX_UPLOAD_MB) == (app.DEFAULT_MAX_PIXELS, ui.DEFAULT_MAX_UPLOAD_MB)
