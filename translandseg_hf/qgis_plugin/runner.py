"""Runs the environment's `translandseg` as a child process, so torch never loads into QGIS's Python: its log lines and
tile progress go to a Processing feedback, and Cancel ends it with its children.

Pure Python (no qgis import): the feedback is anything with QgsProcessingFeedback's methods."""

from __future__ import annotations

import codecs
import os
import queue
import re
import shlex
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import Optional

# QGIS sets these for its own Python, GDAL and PROJ; the environment's Python and its rasterio wheel bring their own,
# and a QGIS proj.db of another version breaks them ("DATABASE.LAYOUT.VERSION" errors).
HOST_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "GDAL_DATA", "GDAL_DRIVER_PATH",
                  "PROJ_LIB", "PROJ_DATA", "QT_PLUGIN_PATH")
CHILD_VARIABLES = {"TRANSLANDSEG_PROGRESS": "1", "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
POLL_SECONDS = 0.1
STOP_SECONDS = 5.0  # after SIGTERM, before SIGKILL
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# A tqdm line: "tiles: 14tile [00:00, 99.77tile/s]" (no total) or "files:  40%|████  | 4/10 [00:01<00:02, ...]".
PROGRESS_BAR = re.compile(r"^\s*(?P<label>[^:|\[]+):\s*(?:\d+%\|[^|]*\|\s*)?(?P<done>\d+)(?:/(?P<total>\d+))?"
                          r"\s*[A-Za-z]*\s*\[")
MESSAGE_LINE = re.compile(r"^\s*(error|failed):\s")
TAIL_LINES = 20


class CommandFailed(Exception):
    """The command exited non-zero; the message is its own (its `error:` and `failed:` lines)."""


class Canceled(Exception):
    """The user canceled; the command and its children are stopped."""


@dataclass(frozen=True)
class ProgressBar:
    """One state of one of the command's tqdm bars."""

    label: str
    done: int
    total: Optional[int]


def parse_progress(line: str) -> Optional[ProgressBar]:
    """The bar a line of standard error draws, or None for a log line."""
    match = PROGRESS_BAR.match(ANSI_ESCAPE.sub("", line))
    if not match:
        return None
    total = match.group("total")
    return ProgressBar(match.group("label").strip(), int(match.group("done")), int(total) if total else None)


def child_environment(base: Optional[dict] = None) -> dict:
    """QGIS's environment without its Python, GDAL and PROJ paths, with the command's progress bars on a pipe."""
    environment = {key: value for key, value in (os.environ if base is None else base).items()
                   if key not in HOST_VARIABLES}
    environment.update(CHILD_VARIABLES)
    return environment


def start(command: list[str], cwd: Optional[str] = None) -> subprocess.Popen:
    """The command in a process group of its own, so that stopping it stops its children too."""
    group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
             else {"start_new_session": True})
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_environment(), cwd=cwd, **group)


def stop(process: subprocess.Popen) -> None:
    """End the process and everything it started: SIGTERM to its group, SIGKILL after STOP_SECONDS."""
    if os.name == "nt":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, check=False)
        process.wait()
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; children that ignored SIGTERM may be left in the group
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        break
    process.wait()


def read_lines(stream, source: str, lines: queue.Queue) -> None:
    """Put each line of `stream` on `lines` as (source, text); tqdm ends its updates with carriage returns, so those
    end a line too. A final (source, None) says the stream is closed."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        *complete, pending = re.split(r"\r\n|\r|\n", pending + decoder.decode(chunk))
        for line in complete:
            lines.put((source, line))
    if pending + decoder.decode(b"", final=True):
        lines.put((source, pending))
    lines.put((source, None))


class FeedbackReporter:
    """Sends the command's lines to the feedback: bars as progress, `warning:` lines as warnings, the rest as log."""

    def __init__(self, feedback):
        self.feedback = feedback
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    def line(self, source: str, text: str) -> None:
        bar = parse_progress(text) if source == "stderr" else None
        if bar is not None:
            self.progress(bar)
            return
        text = ANSI_ESCAPE.sub("", text).rstrip()
        if not text.strip():
            return
        (self.stdout if source == "stdout" else self.stderr).append(text)
        if text.startswith("warning:"):
            self.feedback.pushWarning(text)
        elif source == "stdout":
            self.feedback.pushInfo(text)
        else:
            self.feedback.pushConsoleInfo(text)

    def progress(self, bar: ProgressBar) -> None:
        if bar.label == "tiles" and bar.total:
            self.feedback.setProgress(100.0 * bar.done / bar.total)
            self.feedback.setProgressText(f"{bar.done} of {bar.total} tiles mapped")
        elif bar.label == "tiles":
            self.feedback.setProgressText(f"{bar.done} tiles mapped")
        elif bar.total:
            self.feedback.setProgressText(f"{bar.label}: {bar.done}/{bar.total}")

    def failure_message(self, returncode: int) -> str:
        """The command's own words: its `error:` and `failed:` lines, else the end of its standard error."""
        said = [line.strip() for line in self.stderr + self.stdout if MESSAGE_LINE.match(line)]
        said = said or self.stderr[-TAIL_LINES:] or self.stdout[-TAIL_LINES:] or ["(no output)"]
        return f"translandseg exited with status {returncode}: " + "\n".join(dict.fromkeys(said))


def run_command(command: list[str], feedback, cwd: Optional[str] = None) -> str:
    """Run `command` to its end and return its standard output; raise Canceled (after stopping it) when the feedback
    is canceled and CommandFailed with its message when it exits non-zero."""
    feedback.pushCommandInfo(subprocess.list2cmdline(command) if os.name == "nt" else shlex.join(command))
    reporter = FeedbackReporter(feedback)
    try:
        process = start(command, cwd)
    except OSError as error:
        raise CommandFailed(f"{command[0]}: cannot be run ({error.strerror or error}); check the TransLandSeg "
                            "environment (Processing > TransLandSeg > Check environment).") from error
    lines: queue.Queue = queue.Queue()
    readers = [threading.Thread(target=read_lines, args=(stream, name, lines), daemon=True)
               for stream, name in ((process.stdout, "stdout"), (process.stderr, "stderr"))]
    for reader in readers:
        reader.start()
    open_streams = len(readers)
    try:
        while open_streams or process.poll() is None:
            if feedback.isCanceled():
                stop(process)
                raise Canceled(f"canceled: {command[0]} was stopped")
            try:
                source, text = lines.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if text is None:
                open_streams -= 1
            else:
                reporter.line(source, text)
    finally:
        if process.poll() is None:
            stop(process)
        for reader in readers:
            reader.join(STOP_SECONDS)
        process.stdout.close()
        process.stderr.close()
    if process.returncode != 0:
        raise CommandFailed(reporter.failure_message(process.returncode))
    return "\n".join(reporter.stdout)
