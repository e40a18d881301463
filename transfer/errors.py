"""One-line errors for bad input, and the wrapper that runs an entry point's main()."""

import logging
import os
import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A problem with the user's input or environment, reported as one line, not a traceback."""


def _main_module_name() -> str:
    """`python -m stages.split`'s module as stages.split, not as __main__."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec else "__main__"


def _name_main_module(log_record: logging.LogRecord) -> bool:
    if log_record.name == "__main__":
        log_record.name = _main_module_name()
    return True


def run_main(main: Callable[[], None]) -> None:
    """Configure logging, call `main`, and turn a PipelineError into one line and exit code 1.

    It ends the process, even on success: call it only from a `__main__` block.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_name_main_module)
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        # On a line of its own: Ctrl-C comes mid progress bar, whose line has no end yet.
        print("\ninterrupted: the output being written was discarded", file=sys.stderr)
        sys.exit(130)
    # Every output is written, closed and renamed into place by now (each is written inside
    # main()'s `with atomic_output(...)` blocks), and no thread of ours is left writing.
    # Skip the interpreter's teardown: once TensorFlow has run, it is a sixth of a short
    # stage's time (docs/benchmarks.md, "Figures behind the code's choices").
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
