"""How `translandseg predict` reports its progress: tqdm bars for a person at a terminal (the default), or, with
`--progress json`, one JSON object per line on standard output for a program that runs the command (the QGIS plugin),
so that no program has to read a bar's drawing.

The JSON protocol (PROTOCOL = 1). While the command runs, standard output carries only these lines; everything else
it says (`warning:` lines, the `error:` line of a refused or failed run) goes to standard error as text:

    {"event": "start", "protocol": 1, "total": N}                    the run begins, with N inputs
    {"event": "file", "input": PATH, "index": I, "total": N}         input I (0-based) of N begins
    {"event": "tiles", "input": PATH, "done": K, "total": T}         K of its T tiles are mapped (after each batch)
    {"event": "result", "input": PATH, "index": I, "status": S, "message": M}
                                                                     it ended: S is done, skipped or failed, M why
    {"event": "summary", "done": D, "skipped": K, "failed": F, "exit_status": E, "text": TEXT}
                                                                     the run ended (TEXT: the summary a person reads)

Under `accelerate launch` every event also carries "process": the process index. A run that ends with an `error:`
line (exit status 1 or 2, see `translandseg --help`) writes no summary. Inputs are named as the text summary names
them."""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from typing import Iterator, Optional, Sequence, TextIO

from ..console import bar_size

PROTOCOL = 1
CHOICES = ("bars", "json")  # `translandseg predict --progress`


class Progress:
    """What `predict_files` tells, in order: start(files), then per input file(), plan() and tiles() while it is
    mapped, result(); close() at the end. This base tells nobody."""

    def start(self, files: Sequence) -> None:
        pass

    def file(self, index: int, path) -> None:
        pass

    def plan(self, total: int) -> None:
        """The input's tile count, once it is known."""

    def tiles(self, count: int) -> None:
        """`count` more tiles of the input are mapped."""

    def result(self, index: int, result) -> None:
        """The input ended (`scene.FileResult`)."""

    def close(self) -> None:
        pass

    @contextlib.contextmanager
    def over(self, files: Sequence) -> Iterator["Progress"]:
        self.start(files)
        try:
            yield self
        finally:
            self.close()


class TqdmProgress(Progress):
    """Two bars, the files and the tiles of the one being mapped, where someone sees them (`console.interactive`)."""

    def __init__(self, show: bool = True):
        self.show = show

    def start(self, files: Sequence) -> None:
        from tqdm.auto import tqdm  # here: `translandseg --help` imports this module for CHOICES

        size = bar_size()  # a terminal that reports no size still gets bars
        self.file_bar = tqdm(total=len(files), desc="files", unit="file", disable=not self.show, **size)
        self.tile_bar = tqdm(desc="tiles", unit="tile", disable=not self.show, leave=False, **size)

    def file(self, index: int, path) -> None:
        self.file_bar.set_postfix_str(path.name)

    def plan(self, total: int) -> None:
        self.tile_bar.reset(total=total)

    def tiles(self, count: int) -> None:
        self.tile_bar.update(count)

    def result(self, index: int, result) -> None:
        self.file_bar.update(1)

    def close(self) -> None:
        self.tile_bar.close()
        self.file_bar.close()


class JsonProgress(Progress):
    """The JSON protocol above, one flushed line per event (tiles are counted in the mapping thread: a lock keeps
    lines whole)."""

    def __init__(self, stream: Optional[TextIO] = None, process: Optional[int] = None):
        self.stream = stream or sys.stdout
        self.process = process
        self.lock = threading.Lock()
        self.input, self.done, self.total = None, 0, None

    def emit(self, event: str, **fields) -> None:
        record = {"event": event, **fields, **({} if self.process is None else {"process": self.process})}
        with self.lock:
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()

    def start(self, files: Sequence) -> None:
        self.count = len(files)
        self.emit("start", protocol=PROTOCOL, total=self.count)

    def file(self, index: int, path) -> None:
        self.input, self.done, self.total = str(path), 0, None
        self.emit("file", input=self.input, index=index, total=self.count)

    def plan(self, total: int) -> None:
        self.done, self.total = 0, total
        self.emit("tiles", input=self.input, done=0, total=total)

    def tiles(self, count: int) -> None:
        self.done += count
        self.emit("tiles", input=self.input, done=self.done, total=self.total)

    def result(self, index: int, result) -> None:
        message = result.message.removeprefix(f"{result.path}: ")  # "input" names the file (as `runner.reason`)
        self.emit("result", input=str(result.path), index=index, status=result.status, message=message)

    def summary(self, results: Sequence, text: str, exit_status: int) -> None:
        counts = {status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")}
        self.emit("summary", **counts, exit_status=exit_status, text=text)


@contextlib.contextmanager
def stdout_for_events() -> Iterator[TextIO]:
    """Standard output for the JSON events alone: while this lasts, whatever else would be printed there (a report
    line written with `tqdm.write`) goes to standard error. Yields the stream the events go to."""
    events = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        yield events
