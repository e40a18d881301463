"""Run calls in a second process, started early so that its imports overlap other work."""

import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from transfer.errors import PipelineError


class SecondProcess:
    """A spawned process that runs the calls it is sent, one after another, in their order;
    each `result()` returns the next call's value.

    Start it early: while this process works, it imports the main module (TensorFlow, for a
    stage). `spawn`, because TensorFlow's threads make a forked copy unsafe. Leaving the
    `with` block kills it, so a failure here never waits for it; if it dies (the OOM killer,
    a crash in native code), `result()` says so instead of waiting forever.
    """

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_end,), daemon=True)
        self._process.start()
        child_end.close()

    def __enter__(self) -> "SecondProcess":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._process.kill()
        self._process.join()

    def start(self, function: Callable[..., Any], *args: Any) -> None:
        """Call function(*args) there, after the calls sent before. Pass small arguments:
        this may wait until they are read."""
        self._connection.send((function, args))

    def result(self) -> Any:
        """The return value of the oldest call not yet answered; what it raised is raised
        here."""
        try:
            succeeded, value = self._connection.recv()
        except EOFError:  # the process ended without an answer: only it held the other end
            self._process.join()
            exit_code = self._process.exitcode
            raise PipelineError(f"the second process died (exit code {exit_code})") from None
        if not succeeded:
            raise value
        return value


def _serve(connection: Connection) -> None:
    # Ctrl-C reaches the whole process group; the parent handles it and kills this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            function, args = connection.recv()
        except EOFError:  # the parent is gone
            return
        try:
            connection.send((True, function(*args)))
        except Exception as error:  # sent back, to be raised in the parent
            connection.send((False, error))
