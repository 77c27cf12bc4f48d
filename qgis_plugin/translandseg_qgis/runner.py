"""Runs the environment's `translandseg` as a child process, so torch never loads into QGIS's Python: its log lines and
progress go to a Processing feedback, and Cancel ends it with its children.

Progress comes from the command's JSON protocol (`translandseg predict --progress json`: one JSON object per line on
standard output, documented in translandseg_hf/inference/progress.py), never from the drawing of a progress bar.
Standard output lines that are not events (`translandseg stack` prints text) and standard error (`warning:` and
`error:` lines) are logged as text.

Pure Python (no qgis import, nothing of translandseg_hf): the feedback is anything with QgsProcessingFeedback's
methods."""

from __future__ import annotations

import codecs
import json
import os
import queue
import re
import shlex
import signal
import subprocess
import threading
from typing import Optional

# QGIS sets these for its own Python, GDAL and PROJ; the environment's Python and its rasterio wheel bring their own,
# and a QGIS proj.db of another version breaks them ("DATABASE.LAYOUT.VERSION" errors).
HOST_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "GDAL_DATA", "GDAL_DRIVER_PATH",
                  "PROJ_LIB", "PROJ_DATA", "QT_PLUGIN_PATH")
CHILD_VARIABLES = {"PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
PROGRESS_ARGUMENTS = ["--progress", "json"]  # what `translandseg predict` needs to speak the protocol
POLL_SECONDS = 0.1
STOP_SECONDS = 5.0  # after SIGTERM, before SIGKILL
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MESSAGE_LINE = re.compile(r"^\s*(error|failed):\s")
TAIL_LINES = 20


class CommandFailed(Exception):
    """The command exited non-zero; the message is its own (its `error:` and `failed:` lines)."""


class Canceled(Exception):
    """The user canceled; the command and its children are stopped."""


def parse_event(line: str) -> Optional[dict]:
    """The protocol's event a line of standard output carries, or None for a line of text."""
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("event"), str) else None


def child_environment(base: Optional[dict] = None) -> dict:
    """QGIS's environment without its Python, GDAL and PROJ paths; output unbuffered, in UTF-8."""
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
    """Put each line of `stream` on `lines` as (source, text); a carriage return (a progress bar a library draws on
    standard error) ends a line too. A final (source, None) says the stream is closed."""
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
    """Sends the command's output to the feedback: its events as progress and the lines they stand for, `warning:`
    lines as warnings, the rest as log."""

    def __init__(self, feedback):
        self.feedback = feedback
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    def line(self, source: str, text: str) -> None:
        event = parse_event(text) if source == "stdout" else None
        if event is not None:
            self.event(event)
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

    def event(self, event: dict) -> None:
        """Tiles as progress; a file that was not mapped and the summary as the lines of text the command's report
        has for them (its standard output without --progress json)."""
        kind, total = event["event"], event.get("total")
        if kind == "tiles" and total:
            self.feedback.setProgress(100.0 * event["done"] / total)
            self.feedback.setProgressText(f"{event['done']} of {total} tiles mapped")
        elif kind == "tiles":
            self.feedback.setProgressText(f"{event['done']} tiles mapped")
        elif kind == "file" and total and total > 1:
            self.feedback.setProgressText(f"input {event['index'] + 1} of {total}: {event['input']}")
        elif kind == "result" and event.get("status") != "done":
            self.text_lines([f"{event['status']}: {event['input']}: {event.get('message', '')}"])
        elif kind == "summary":
            self.text_lines(str(event.get("text", "")).splitlines())

    def text_lines(self, lines: list[str]) -> None:
        for text in lines:
            self.stdout.append(text)
            self.feedback.pushInfo(text)

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
