"""Argument checks shared by every config dataclass and entry point: each raises ConfigError, one line.

The config dataclasses call these from `__post_init__`, so a bad value fails where it is given (library or
CLI alike), before anything heavy is loaded. `check_max_length` is the one check of a token limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from llm2edge.defaults import MAX_LENGTH_LIMIT, MAX_LENGTH_MIN
from llm2edge.errors import ConfigError


def _is_int(value: Any) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def at_least(name: str, value: Any, low: int | float = 1) -> None:
    """ConfigError unless `value` is a number >= `low` (ints must be real ints, not bools)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value!r}")


def optional_at_least(name: str, value: Any, low: int | float = 1) -> None:
    """`at_least`, where None (not given) is also fine."""
    if value is not None:
        at_least(name, value, low)


def positive(name: str, value: Any) -> None:
    """ConfigError unless `value` is a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{name} must be positive, got {value!r}")


def fraction(name: str, value: Any, *, closed: bool = True) -> None:
    """ConfigError unless 0 <= value <= 1 (or < 1 when not `closed`)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        0 <= value <= 1 if closed else 0 <= value < 1)
    if not ok:
        raise ConfigError(f"{name} must be in [0, 1{']' if closed else ')'}, got {value!r}")


def open_fraction_from_zero(name: str, value: Any) -> None:
    """ConfigError unless 0 <= value < 1 (`fraction` with the upper end excluded: a share of rows held
    back, a dropout rate)."""
    fraction(name, value, closed=False)


def open_fraction(name: str, value: Any) -> None:
    """ConfigError unless 0 < value < 1 (a confidence: 0 or 1 would make any bound meaningless)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1
    if not ok:
        raise ConfigError(f"{name} must be in (0, 1), both ends excluded, got {value!r}")


def one_of(name: str, value: Any, choices: Iterable[Any]) -> None:
    """ConfigError unless `value` is one of `choices` (named in the message)."""
    options = tuple(choices)
    if value not in options:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, options))}, got {value!r}")


def check_threads(value: Any, name: str = "threads") -> None:
    """ConfigError unless `value` is None (the default: resolved later) or an integer >= 1."""
    if value is not None and (not _is_int(value) or value < 1):
        raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")


def check_max_length(value: Any, name: str = "max_length") -> int:
    """`value` if it is a usable token limit (an integer from MAX_LENGTH_MIN to MAX_LENGTH_LIMIT)."""
    if not _is_int(value) or not MAX_LENGTH_MIN <= value <= MAX_LENGTH_LIMIT:
        raise ConfigError(f"{name} must be an integer from {MAX_LENGTH_MIN} to {MAX_LENGTH_LIMIT}, "
                          f"got {value!r}")
    return int(value)


def off_or_folds(name: str, value: Any) -> None:
    """ConfigError unless `value` is 0 (off) or a number of folds (at least 2)."""
    if value != 0 or isinstance(value, bool):
        at_least(name, value, 2)


def thread_count(name: str, value: Any) -> None:
    """`check_threads` in the `check(name, value)` form of a declared field (llm2edge.params)."""
    check_threads(value, name)


def token_limit(name: str, value: Any) -> None:
    """`check_max_length` in the `check(name, value)` form of a declared field (llm2edge.params)."""
    check_max_length(value, name)


def parse_map(spec: str | None, labels: Sequence[str]) -> dict[str, str]:
    """`--map 'A=Liberal,B=Conservative'` as {answer: label}: ConfigError on a malformed pair, a target
    outside `labels` or an answer mapped twice (import-labels, merge-predictions)."""
    if not spec or not spec.strip():
        return {}
    out: dict[str, str] = {}
    for pair in spec.split(","):
        if not pair.strip():
            continue
        raw, sep, target = pair.partition("=")
        raw, target = raw.strip(), target.strip()
        if not sep or not raw or not target:
            raise ConfigError(f"--map: '{pair.strip()}' is not ANSWER=LABEL "
                              "(e.g. --map 'A=Liberal,B=Neutral')")
        if target not in labels:
            raise ConfigError(f"--map: '{raw}={target}': '{target}' is not one of the labels "
                              f"{', '.join(labels)}")
        if raw in out and out[raw] != target:
            raise ConfigError(f"--map: '{raw}' is mapped twice ({out[raw]}, {target})")
        out[raw] = target
    return out
