"""The console lines llm2edge prints: summaries and warnings on stderr (stdout stays for machine output)."""

from __future__ import annotations

import sys


def say(message: str) -> None:
    """One summary line on stderr."""
    print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """One warning line on stderr, prefixed `llm2edge: warning:`."""
    print(f"llm2edge: warning: {message}", file=sys.stderr, flush=True)
