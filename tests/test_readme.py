"""The README a user reads first: short, its links land on files that exist, and its runnable blocks run as a reader
types them (the library example on a tiny random SAM, then the command line on what it saved)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from conftest import ROOT
from helpers.doc_blocks import run_page, runnable_blocks

README = ROOT / "README.md"
MAX_LINES = 250  # issue 41: a README that fits on a screen or two
LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)#\s]+)(?:#[^)]*)?\)")


def test_the_readme_fits_on_two_screens():
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines, over {MAX_LINES}: move the detail into docs/"


def test_every_relative_link_in_the_readme_lands_on_a_file():
    targets = LINK.findall(README.read_text())
    assert len(targets) > 20, targets
    missing = sorted({target for target in targets if not (ROOT / target).exists()})
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_library_and_command_line_examples_are_marked_runnable():
    assert [block.language for block in runnable_blocks(README)] == ["python", "bash"]


def test_the_runnable_blocks_run_and_map_the_scene_the_library_example_saved():
    run = run_page(README, timeout=420)
    try:
        maps = run.workdir / "maps"
        written = sorted(path.name for path in maps.iterdir())
        for name in ("scene_probability.tif", "scene_mask.tif", "scene_landslides.gpkg", "scene_quicklook.png",
                     "scene_mask.png"):
            assert name in written, f"{name} not written; maps/ holds {written}\n{run.output()}"
        assert (run.workdir / "my-adapter" / "adapter_model.safetensors").is_file()
        assert "(256, 256)" in run.blocks[0].output  # the mask of the 256 px scene, at its size
        assert "translandseg" in run.blocks[1].output and "trainable" in run.blocks[1].output.lower()
    finally:
        run.cleanup()


def test_the_quick_start_names_the_two_set_up_commands_as_they_exist():
    first_bash = re.search(r"```bash\n(.*?)```", README.read_text(), re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_bash.splitlines()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        assert subprocess.run(["bash", "-n", ROOT / script]).returncode == 0, f"{script} does not parse"


@pytest.mark.skipif(os.environ.get("TRANSLANDSEG_README_DEMO") != "1",
                    reason="the demo trains for about 30 s after setting up .venv; TRANSLANDSEG_README_DEMO=1 runs it")
def test_the_demo_command_writes_what_the_readme_lists(tmp_path):
    demo = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=dict(os.environ, OUT=str(tmp_path / "demo")),
                          capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stderr[-4000:]
    for name in ("model/adapter_model.safetensors", "metrics.json", "evaluation.json", "predictions/grid.png"):
        assert (tmp_path / "demo" / name).is_file(), name
