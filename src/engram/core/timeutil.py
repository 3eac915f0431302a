"""Time values in one canonical form: ISO 8601 UTC with microseconds (sorts as text)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from engram.errors import ValidationError

_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"


def format_timestamp(moment: datetime) -> str:
    """The canonical text form of an aware datetime (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_FORMAT)


def normalize_timestamp(value: str | datetime | date | int | float, *, what: str) -> str:
    """Parse an ISO date, ISO datetime, datetime or Unix time into the canonical text form."""
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, date):
        return format_timestamp(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return format_timestamp(datetime.fromtimestamp(value, tz=UTC))
        except (OverflowError, OSError, ValueError):  # past year 9999, or not a number (nan)
            raise ValidationError(
                f"{what}: {value!r} is not a Unix time between years 1 and 9999"
            ) from None
    if isinstance(value, str):
        text = value.strip()
        try:
            return format_timestamp(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValidationError(f"{what}: expected an ISO 8601 date or datetime, got {value!r}")


def normalize_date(value: str | datetime | date, *, what: str) -> str:
    """Parse an ISO date (or datetime, whose UTC date is kept) into `YYYY-MM-DD`."""
    if isinstance(value, datetime):
        return format_timestamp(value)[:10]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            return normalize_timestamp(text, what=what)[:10]
    raise ValidationError(f"{what}: expected an ISO 8601 date, got {value!r}")


def utc_now_iso() -> str:
    """Now, in the canonical text form (for the server's bookkeeping; the library's pipeline
    takes its clock from the context)."""
    return format_timestamp(datetime.now(UTC))


def next_day(day: str, *, what: str) -> str:
    """The ISO date after `day` (an ISO date): the end of a whole-day range."""
    try:
        return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    except (ValueError, OverflowError):
        raise ValidationError(f"{what}: {day!r} is not a valid date") from None
