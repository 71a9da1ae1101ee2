"""`python -m llm2edge` runs the CLI."""

from llm2edge.cli import main

main()
