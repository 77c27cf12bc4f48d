"""Run the code of a Markdown page (a tutorial, the README) as a reader would, so that no page goes stale.

A fenced code block is runnable when the line right before its fence is `<!-- runnable -->`; other blocks are
shown, never run. `run_page` runs a page's runnable blocks top to bottom in one fresh working directory, offline
(HF_HUB_OFFLINE=1, a private HF_HOME), with one time limit for the whole page:
- bash blocks each in `bash -euo pipefail`, as a reader types them into one terminal (files carry over, shell
  variables do not);
- python blocks in one Python process per page, sharing one namespace, as a notebook's kernel or one `python`
  session would: a later block may use what an earlier one defined, and torch and the package are imported once
  per page, not once per block (several seconds each on a loaded 2-core CPU).
The working directory holds links to the checkout's `recipes/` and `scripts/`, so a page's commands are written as a
reader runs them at the root of a checkout while everything they write stays in the temporary folder. The package's
`translandseg` command and `python` are this interpreter's.

Pictures: a page links the pictures its code writes as `figures/NAME.png` (relative to the page). Run from the
working directory, the same path names the file the run wrote; `produced_figures` checks every one exists, and
`python scripts/run_tutorial.py PAGE` copies them beside the page (docs/tutorials/figures/) to refresh them.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- runnable -->"
LANGUAGES = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^\s`]*)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|<img\b[^>]*\bsrc=\"([^\"]+)\"")
LINKED_FROM_CHECKOUT = ("recipes", "scripts")
TAIL = 6000  # characters of a failing block's output shown in the error


@dataclass(frozen=True)
class Block:
    """One runnable fenced block: its language (bash or python), its code, and the 1-based line of its fence."""

    language: str
    code: str
    line: int


@dataclass
class BlockRun:
    block: Block
    seconds: float
    output: str


@dataclass
class PageRun:
    """What running a page left: its working directory (still there until `cleanup`) and each block's output."""

    page: Path
    workdir: Path
    blocks: list[BlockRun] = field(default_factory=list)
    seconds: float = 0.0

    def output(self) -> str:
        return "\n".join(run.output for run in self.blocks)

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class PageError(AssertionError):
    """A page whose block failed or ran out of time: names the page, the block's line and shows its output."""

    def __init__(self, page: Path, block: Optional[Block], reason: str, output: str = ""):
        where = f"{page.name}, block at line {block.line} ({block.language})" if block else page.name
        tail = output[-TAIL:]
        super().__init__(f"{where}: {reason}" + (f"\n--- output (last {len(tail)} characters) ---\n{tail}"
                                                  if output else ""))
        self.page, self.block, self.reason = page, block, reason


def runnable_blocks(path) -> list[Block]:
    """The page's runnable blocks in order; a marked block in another language, or unclosed, is an error."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = _closing(lines, index, opening)
        if end is None:
            raise ValueError(f"{path}:{index + 1}: a code fence that is never closed")
        if index > 0 and lines[index - 1].strip() == MARKER:
            info = opening["info"].lower()
            if info not in LANGUAGES:
                raise ValueError(f"{path}:{index + 1}: a runnable block must be bash or python, not {info or 'unnamed'!r}")
            indent = len(opening["indent"])
            code = "\n".join(_dedent(line, indent) for line in lines[index + 1:end])
            blocks.append(Block(LANGUAGES[info], code + "\n", index + 1))
        index = end + 1
    return blocks


def _dedent(line: str, indent: int) -> str:
    """A block inside a list item is indented as its fence is: its lines lose that indent (and no more)."""
    return line[indent:] if line[:indent].strip() == "" else line.lstrip()


def _closing(lines: list[str], start: int, opening) -> Optional[int]:
    fence = opening["fence"]
    for index in range(start + 1, len(lines)):
        stripped = lines[index].strip()
        if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
            return index
    return None


def referenced_images(path) -> list[str]:
    """Relative image paths the page shows (Markdown `![..](..)` and `<img src>`), in order, without repeats."""
    found = []
    for match in _IMAGE.finditer(Path(path).read_text(encoding="utf-8")):
        target = match[1] or match[2]
        if "://" not in target and not target.startswith(("/", "data:")) and target not in found:
            found.append(target)
    return found


def figure_links(path) -> list[str]:
    """The pictures the page's own code is to write: those it links under `figures/`."""
    return [target for target in referenced_images(path) if target.startswith("figures/")]


def produced_figures(run: PageRun) -> dict[str, Path]:
    """Each `figures/...` picture the page links -> the file its run wrote; missing ones raise naming the page."""
    found = {link: run.workdir / link for link in figure_links(run.page)}
    missing = [link for link, file in found.items() if not file.is_file() or file.stat().st_size == 0]
    if missing:
        raise PageError(run.page, None, f"the run wrote no {', '.join(missing)} (linked by the page); "
                        f"figures it wrote: {sorted(str(p.relative_to(run.workdir)) for p in run.workdir.glob('figures/*'))}")
    return found


def page_environment(workdir: Path) -> dict:
    """The reader's shell: this interpreter's commands first on PATH, offline, a private HF_HOME, no GUI backend."""
    environment = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_CACHE", "HF_HOME")}
    environment.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}",
        HF_HUB_OFFLINE="1", HF_HOME=str(workdir / ".hf-home"), MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1", QT_QPA_PLATFORM="offscreen")
    # One torch/OpenMP thread unless told otherwise: on a shared, loaded CPU torch's threads spin waiting for each
    # other (the fine-tune page's training took 4x longer with 2 threads at load 5 on 2 cores).
    environment.setdefault("OMP_NUM_THREADS", "1")
    return environment


def run_page(page, timeout: float = 240.0, workdir: Optional[Path] = None) -> PageRun:
    """Run the page's runnable blocks top to bottom within `timeout` seconds in all; PageError names the failing one."""
    page = Path(page).resolve()
    blocks = runnable_blocks(page)
    if not blocks:
        raise PageError(page, None, f"no runnable blocks (a fence right after a `{MARKER}` line)")
    own_folder = workdir is None  # made here: removed here if the page fails (the caller removes it otherwise)
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"tutorial-{page.stem}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for name in LINKED_FROM_CHECKOUT:
        if not (workdir / name).exists():
            (workdir / name).symlink_to(ROOT / name, target_is_directory=True)
    run = PageRun(page, workdir)
    environment = page_environment(workdir)
    deadline = time.monotonic() + timeout
    python = None
    try:
        for block in blocks:
            start = time.monotonic()
            if block.language == "python":
                python = python or PythonSession(workdir, environment, page.name)
                output = python.run(block, page, deadline)
            else:
                output = _run_bash(block, page, workdir, environment, deadline)
            run.blocks.append(BlockRun(block, time.monotonic() - start, output))
    except BaseException:
        if own_folder:
            run.cleanup()
        raise
    finally:
        if python:
            python.close()
    run.seconds = sum(block.seconds for block in run.blocks)
    return run


def _run_bash(block: Block, page: Path, workdir: Path, environment: dict, deadline: float) -> str:
    process = subprocess.Popen(["bash", "-euo", "pipefail", "-c", block.code], cwd=workdir, env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        _kill(process)
        output, _ = process.communicate()
        raise PageError(page, block, "ran past the page's time limit", output) from None
    if process.returncode:
        raise PageError(page, block, f"exit status {process.returncode}", output)
    return output


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# The page's Python session: reads one JSON line per block, runs it in one namespace, and ends each block's output
# with a line holding the token and the outcome, so its output (GDAL's and warnings included) stays in order.
_SESSION = r"""
import json, sys, traceback
token = sys.argv[1]
namespace = {"__name__": "__main__"}
for line in sys.stdin:
    request = json.loads(line)
    status = "ok"
    try:
        exec(compile(request["code"], request["name"], "exec"), namespace)
    except SystemExit as stop:
        status = "ok" if stop.code in (None, 0) else f"SystemExit({stop.code!r})"
    except BaseException:
        traceback.print_exc()
        status = "error"
    sys.stdout.flush(); sys.stderr.flush()
    print(f"\n{token} {status}", flush=True)
"""


class PythonSession:
    """One Python process for a page's python blocks, in the page's working directory, sharing one namespace."""

    def __init__(self, workdir: Path, environment: dict, name: str):
        self.token = f"--- block done {uuid.uuid4().hex} ---"
        self.name = name
        self.process = subprocess.Popen([sys.executable, "-u", "-c", _SESSION, self.token], cwd=workdir,
                                        env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, block: Block, page: Path, deadline: float) -> str:
        request = {"code": block.code, "name": f"{page.name}:{block.line}"}
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        output = []
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                _kill(self.process)
                raise PageError(page, block, "ran past the page's time limit", "".join(output)) from None
            if line is None:
                raise PageError(page, block, f"Python exited ({self.process.wait()})", "".join(output))
            if line.startswith(self.token):
                status = line[len(self.token):].strip()
                text = "".join(output).removesuffix("\n")
                if status != "ok":
                    raise PageError(page, block, f"raised ({status})", text)
                return text
            output.append(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill(self.process)


def refresh_figures(page, timeout: float = 600.0) -> tuple[PageRun, list[Path]]:
    """Run the page and copy the pictures it links under figures/ beside it (the committed copies)."""
    run = run_page(page, timeout)
    try:
        written = []
        for link, produced in produced_figures(run).items():
            target = run.page.parent / link
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(produced, target)
            written.append(target)
        return run, written
    finally:
        run.cleanup()
