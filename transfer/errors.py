"""One-line errors for bad input, and the wrapper that runs an entry point's main()."""

import logging
import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A problem with the user's input or environment, reported as one line, not a traceback."""


def _name_main_module(record: logging.LogRecord) -> bool:
    """Log `python -m stages.split`'s records as stages.split, not as __main__."""
    if record.name == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        record.name = spec.name if spec else record.name
    return True


def run_main(main: Callable[[], None]) -> None:
    """Configure logging, call `main`, and turn a PipelineError into one line and exit code 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(_name_main_module)
    try:
        main()
    except PipelineError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: the output being written was discarded", file=sys.stderr)
        sys.exit(130)
