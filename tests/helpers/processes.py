"""Child processes started as a user's terminal starts them."""

from __future__ import annotations

import signal


def sigint_as_in_a_terminal() -> None:
    """Popen's preexec_fn: SIGINT back to its default in the child. A shell that runs a job in the background without
    job control (`cmd &` in a script, some CI runners) starts it with SIGINT ignored, and a Python child then never
    sees Ctrl-C (it keeps an inherited SIG_IGN): the tests that send Ctrl-C would pass or fail by how the suite was
    launched."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
