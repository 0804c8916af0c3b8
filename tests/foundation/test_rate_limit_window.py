"""RATE_LIMIT_WINDOW_SECONDS is a duration like the other duration settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from tests.conftest import make_settings


@pytest.mark.parametrize(("text", "window"), [("600", 600), ("10m", 600), ("1h", 3600), ("90", 90)])
def test_the_window_takes_seconds_and_durations(text: str, window: int) -> None:
    """The old form (a number of seconds) keeps working; `10m` and `1h` work too."""
    assert make_settings(rate_limit_window_seconds=text).rate_limit_window_seconds == timedelta(
        seconds=window
    )


def test_an_empty_window_is_refused() -> None:
    """A zero window would divide by zero in every counted request: refused at start-up."""
    with pytest.raises(ValidationError):
        make_settings(rate_limit_window_seconds="0")
