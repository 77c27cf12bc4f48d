"""The tutorials (docs/tutorials/*.md, issue 41) run top to bottom offline on a CPU and draw the pictures they show.

Each page's runnable blocks run in a fresh working directory (tests/helpers/doc_blocks.py), within a time limit per
page; every picture it links under figures/ must be written by that run, not only committed. The runner itself is
tested first, on small pages written here. `python scripts/run_tutorial.py` reruns a page and refreshes its figures.
"""

from __future__ import annotations

import re
import time

import pytest
from PIL import Image

from helpers.doc_blocks import Block, PageError, produced_figures, referenced_images, run_page, runnable_blocks

from conftest import ROOT

TUTORIALS = ROOT / "docs" / "tutorials"

# page -> (seconds it may take in all on a loaded 2-core CPU, what its run must print). The limits are about three
# times what each took at load 4-5; the whole file stays under 5 minutes when the machine is not overloaded.
PAGES = {
    "fine-tune": (150, [r"\| model \(folder test, n=32\) \|", r"class-mean \(background and landslide\):\n\s+P ",
                        r"landslide-class:\n\s+precision"]),
    "map-a-scene": (150, [r"1 done, 0 skipped, 0 failed", r"scene_uncertainty\.tif", r"\d+ landslides?, [\d,]+ m2",
                          r"landslide IoU against the truth"]),
    "sentinel2-stac": (150, [r"wrote stack\.tif: 14 bands \(B4, B3, B2, .*slope, dem\)", r"item_probability\.tif",
                             r"landslide IoU against the truth"]),
    "qgis": (60, [r"translandseg_qgis\.zip", r"metadata\.txt"]),
    "share-on-the-hub": (150, [r"adapter_model\.safetensors", r"loaded landslide-lab/", r"app\.py"]),
    "event-inventory": (90, [r"wrote inventory/inventory\.gpkg \(\d+ new landslides, change method both\)",
                             r"power-law tail: alpha = \d\.\d\d ± 0\.\d\d above",
                             r"landslide IoU against the truth: 0\.9\d", r"(9\d|100) of 100 true scars found",
                             r"pre_event_valid\): \[\(\d+, False\)\]"]),
}


def test_every_tutorial_page_is_run():
    assert set(PAGES) == {page.stem for page in TUTORIALS.glob("*.md")}, "give each tutorial page a row in PAGES"


@pytest.mark.parametrize("name", PAGES)
def test_tutorial_runs_offline_and_draws_its_figures(tmp_path, name):
    limit, expected = PAGES[name]
    page = TUTORIALS / f"{name}.md"
    start = time.monotonic()
    run = run_page(page, timeout=limit, workdir=tmp_path / "work")
    assert time.monotonic() - start < limit + 30  # the limit bounds the blocks; start-up and clean-up are small
    output = run.output()
    for pattern in expected:
        assert re.search(pattern, output), f"{page.name}: its run printed nothing matching {pattern!r}"
    for link, produced in produced_figures(run).items():
        with Image.open(produced) as picture:
            assert min(picture.size) > 32, f"{page.name}: {link} is {picture.size}"
    for link in referenced_images(page):  # committed too, where the docs site shows them
        assert (page.parent / link).is_file(), f"{page.name} links {link}, which is not in {page.parent}"


# --- the runner ------------------------------------------------------------------------------------------------

PAGE = """# A page

Shown, not run:

```bash
exit 1
```

<!-- runnable -->
```python
answer = 6 * 7
open("from-python.txt", "w").write(str(answer))
```

- In a list:

  <!-- runnable -->
  ```bash
  echo "bash read $(cat from-python.txt) offline=$HF_HUB_OFFLINE"
    echo indented
  ```

<!-- runnable -->
```py
print("still", answer)
```
"""


def write_page(tmp_path, text, name="page.md"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_only_marked_blocks_are_runnable_with_their_language_and_line(tmp_path):
    blocks = runnable_blocks(write_page(tmp_path, PAGE))
    assert blocks == [
        Block("python", 'answer = 6 * 7\nopen("from-python.txt", "w").write(str(answer))\n', 10),
        Block("bash", 'echo "bash read $(cat from-python.txt) offline=$HF_HUB_OFFLINE"\n  echo indented\n', 18),
        Block("python", 'print("still", answer)\n', 24),
    ]


@pytest.mark.parametrize("text, message", [
    ("<!-- runnable -->\n```text\nhello\n```\n", r"page\.md:2: a runnable block must be bash or python, not 'text'"),
    ("intro\n\n```bash\nnever closed\n", r"page\.md:3: a code fence that is never closed"),
])
def test_a_page_the_runner_cannot_read_is_refused_with_its_line(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        runnable_blocks(write_page(tmp_path, text))


def test_blocks_share_the_working_directory_and_python_blocks_one_namespace(tmp_path):
    run = run_page(write_page(tmp_path, PAGE), timeout=60, workdir=tmp_path / "work")
    assert [block.output.strip() for block in run.blocks] == ["", "bash read 42 offline=1\nindented", "still 42"]
    assert (tmp_path / "work" / "recipes").resolve() == ROOT / "recipes"  # commands run as at a checkout's root


FAILURES = {  # a page's blocks -> what the error names
    "bash": ("<!-- runnable -->\n```bash\necho before\nfalse\necho after\n```\n",
             r"failing\.md, block at line 2 \(bash\): exit status 1\n.*before", "after"),
    "python": ("<!-- runnable -->\n```python\nx = 1\n```\n\n<!-- runnable -->\n```python\nprint('ok')\nx.missing\n```\n",
               r"failing\.md, block at line 7 \(python\): raised \(error\)\n.*ok\n.*AttributeError: 'int' object has no "
               r"attribute 'missing'", None),
}


@pytest.mark.parametrize("kind", FAILURES)
def test_a_failing_block_names_the_page_its_line_and_its_output(tmp_path, kind):
    text, message, absent = FAILURES[kind]
    with pytest.raises(PageError, match=re.compile(message, re.S)) as caught:
        run_page(write_page(tmp_path, text, "failing.md"), timeout=60, workdir=tmp_path / "work")
    if absent:
        assert absent not in str(caught.value)


@pytest.mark.parametrize("language, sleep", [("bash", "sleep 60"), ("python", "import time; time.sleep(60)")])
def test_a_page_past_its_time_limit_is_stopped_and_named(tmp_path, language, sleep):
    text = f"<!-- runnable -->\n```{language}\n{sleep}\n```\n"
    start = time.monotonic()
    with pytest.raises(PageError, match=rf"slow\.md, block at line 2 \({language}\): ran past the page's time limit"):
        run_page(write_page(tmp_path, text, "slow.md"), timeout=3, workdir=tmp_path / "work")
    assert time.monotonic() - start < 20


def test_a_linked_figure_the_run_did_not_write_fails_even_if_committed(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "old.png").write_bytes(b"committed long ago")
    text = ("![new](figures/new.png) ![old](figures/old.png) ![static](../shot.png) ![web](https://x.org/a.png)\n\n"
            "<!-- runnable -->\n```bash\nmkdir figures && echo png > figures/new.png\n```\n")
    page = write_page(tmp_path, text, "figs.md")
    assert referenced_images(page) == ["figures/new.png", "figures/old.png", "../shot.png"]
    run = run_page(page, timeout=60, workdir=tmp_path / "work")
    with pytest.raises(PageError, match=r"figs\.md: the run wrote no figures/old\.png \(linked by the page\)"):
        produced_figures(run)


def test_a_failing_page_leaves_no_working_directory_of_its_own(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    with pytest.raises(PageError, match=r"exit status 3"):
        run_page(write_page(tmp_path, "<!-- runnable -->\n```bash\ntouch left.txt\nexit 3\n```\n"), timeout=60)
    assert not list((tmp_path / "tmp").iterdir())
