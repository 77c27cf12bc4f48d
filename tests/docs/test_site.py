"""The docs site: `mkdocs build --strict` passes (no broken link, missing page or unresolved docstring reference), the
reference pages generated from the code list every command option, config key and output file, and the built pages
show their pictures in a real browser (Debian's chromium through Playwright, no browser download)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "docs" / "hooks" / "reference.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TUTORIALS = ROOT / "docs" / "tutorials"

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")


def load_hook():
    spec = importlib.util.spec_from_file_location("docs_reference_hook", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site as CI builds it (`mkdocs build --strict`), once for this file."""
    folder = tmp_path_factory.mktemp("site")
    environment = dict(os.environ, NO_MKDOCS_2_WARNING="1", HF_HUB_OFFLINE="1")
    build = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
                           cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, f"mkdocs build --strict failed:\n{build.stdout[-4000:]}\n{build.stderr[-6000:]}"
    return folder


def every_command(parser: argparse.ArgumentParser, path: str = "translandseg"):
    """(command path, its parser) for the parser and every subcommand, nested ones included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from every_command(sub, f"{path} {name}")


def command_sections(markdown: str) -> dict[str, str]:
    """The generated CLI page cut at its command headings: `translandseg predict` -> that command's text."""
    sections, current = {}, None
    for line in markdown.splitlines():
        if line.startswith("#") and line.rstrip().endswith("`") and "`translandseg" in line:
            current = line.split("`")[1]
            sections[current] = ""
        elif current:
            sections[current] += line + "\n"
    return sections


def test_the_cli_reference_lists_every_option_of_every_command(site):
    from translandseg_hf.cli import build_parser

    sections = command_sections(load_hook().cli())
    html = (site / "reference" / "cli" / "index.html").read_text()
    commands = list(every_command(build_parser()))[1:]
    assert len(commands) >= 8, [path for path, _ in commands]
    for path, parser in commands:
        assert path in sections, f"{path} has no section in the CLI reference; sections: {sorted(sections)}"
        assert path in html, f"{path} is missing from the built page"
        table = sections[path].split("| option |", 1)[1]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings or [action.metavar or action.dest]:
                assert f"`{option}" in table, f"{path}: {option} is missing from the CLI reference"


def test_the_config_reference_lists_every_training_key(site):
    from translandseg_hf.training.config import config_keys

    markdown = load_hook().config()
    html = (site / "reference" / "config" / "index.html").read_text()
    missing = [key for key in config_keys() if f"| `{key}` |" not in markdown or f"<code>{key}</code>" not in html]
    assert not missing, f"config keys missing from the reference: {missing}"


def test_the_outputs_reference_names_every_output_file(site):
    from translandseg_hf.geo.sentinel2.composite import OUTPUTS
    from translandseg_hf.inference.scene import EVERY_OUTPUT_SUFFIX

    html = (site / "reference" / "outputs" / "index.html").read_text()
    missing = [name for name in (*[f"STEM{suffix}" for suffix in EVERY_OUTPUT_SUFFIX], *OUTPUTS) if name not in html]
    assert not missing, f"output files missing from the reference: {missing}"


def test_the_api_reference_is_rendered_from_docstrings(site):
    html = (site / "reference" / "api" / "index.html").read_text()
    for name in ("ATLConfig", "TransLandSegModel", "TransLandSegImageProcessor", "predict_files", "segmentation_scores",
                 "load_bijie", "load_landslide4sense", "load_image_folder"):
        assert f'id="translandseg_hf.' in html and name in html, f"{name} is missing from the API reference"


def test_an_unknown_generator_marker_is_refused():
    class Page:
        class file:
            src_path = "reference/x.md"

    with pytest.raises(ValueError, match=r"reference/x\.md: no generator 'nope'; known: cli, config, outputs"):
        load_hook().on_page_markdown("# X\n\n<!-- generated: nope -->\n", Page, None, None)


def page_with_pictures() -> str:
    """A tutorial that shows figures (its built URL path), else the home page's picture."""
    for page in sorted(TUTORIALS.glob("*.md")):
        if "](figures/" in page.read_text():
            return f"tutorials/{page.stem}/index.html"
    return "index.html"


@pytest.mark.parametrize("page", ["index.html", "tutorial"])
def test_the_built_pages_show_their_pictures_in_chromium(site, page, tmp_path):
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (.ci/run installs Debian's chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the dev extra (playwright) is not installed")
    path = site / (page_with_pictures() if page == "tutorial" else page)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            view = browser.new_page(viewport={"width": 1280, "height": 900})
            view.set_default_timeout(30_000)
            view.goto(path.as_uri(), wait_until="load")
            images = view.eval_on_selector_all(
                "article img", "images => images.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
            view.screenshot(path=tmp_path / "page.png", full_page=True)
        finally:
            browser.close()
    assert images, f"{path.relative_to(site)} shows no picture"
    broken = [src for src, complete, width in images if not (complete and width > 0)]
    assert not broken, f"{path.relative_to(site)}: pictures that did not load: {broken}"
    assert (tmp_path / "page.png").stat().st_size > 10_000
