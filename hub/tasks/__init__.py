"""Task files shipped with llm2edge (package data: *.toml)."""
