"""`parse_expiry`, the one reading of a grant's expiry shared by the admin API and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from db.credits import InvalidExpiry, parse_expiry

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def test_a_date_is_valid_through_that_day_in_utc() -> None:
    """`2026-12-31` expires at the first instant of 2027-01-01, UTC."""
    assert parse_expiry("2026-12-31", now=NOW) == datetime(2027, 1, 1, tzinfo=UTC)


def test_today_is_still_valid() -> None:
    """A grant that expires "today" is spendable until the day ends (UTC)."""
    assert parse_expiry("2026-11-23", now=NOW) == datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-31T23:59:59Z", datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (
            "2026-12-31T23:59:59-03:00",
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-3))),
        ),
    ],
)
def test_a_zoned_timestamp_is_taken_as_it_is(text: str, expected: datetime) -> None:
    """A timestamp with its zone is that instant."""
    assert parse_expiry(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-12-31T23:59:59", "no_zone"),
        ("31/12/2026", "format"),
        ("", "format"),
        ("2026-11-22", "past"),
        ("2026-11-23T17:59:59Z", "past"),
    ],
)
def test_refusals_say_why(text: str, reason: str) -> None:
    """Zone-less timestamps, other formats and past moments are refused with their reason."""
    with pytest.raises(InvalidExpiry) as refused:
        parse_expiry(text, now=NOW)
    assert refused.value.reason == reason
