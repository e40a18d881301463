"""The evaluate stage's second process: results, errors, a death, and cleanup."""

import math
import os
import time

import pytest

from transfer.errors import PipelineError
from transfer.second_process import SecondProcess


def test_the_call_returns_its_value() -> None:
    with SecondProcess() as second:
        second.start(math.hypot, 3.0, 4.0)
        assert second.result() == 5.0


def test_calls_run_one_after_another_and_answer_in_their_order() -> None:
    with SecondProcess() as second:
        second.start(math.hypot, 3.0, 4.0)
        second.start(int, "not a number")
        second.start(math.hypot, 6.0, 8.0)
        assert second.result() == 5.0
        with pytest.raises(ValueError, match="not a number"):
            second.result()
        assert second.result() == 10.0


def test_what_the_call_raises_is_raised_here() -> None:
    with SecondProcess() as second:
        second.start(int, "not a number")
        with pytest.raises(ValueError, match="not a number"):
            second.result()


def test_a_process_that_dies_is_an_error_not_a_wait() -> None:
    with SecondProcess() as second:
        second.start(os._exit, 3)
        with pytest.raises(PipelineError, match=r"^the second process died \(exit code 3\)$"):
            second.result()


def test_leaving_the_block_kills_a_call_still_running() -> None:
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), SecondProcess() as second:
        second.start(time.sleep, 120)
        raise KeyboardInterrupt
    assert time.monotonic() - start < 60
