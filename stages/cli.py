"""Run a stage's main(): logging set-up and one-line errors for bad input."""

import logging
import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A problem with the user's input or environment, reported as one line, not a traceback."""


def run(main: Callable[[], None]) -> None:
    """Configure logging, call `main`, and turn a PipelineError into one line and exit code 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: the output being written was discarded", file=sys.stderr)
        sys.exit(130)
