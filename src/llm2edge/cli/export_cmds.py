"""CLI commands of the export stage (registered on import)."""

from __future__ import annotations

from llm2edge.cli import app  # noqa: F401
