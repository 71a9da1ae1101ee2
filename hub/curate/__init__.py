"""Curate LLM labels: confident learning, expert relabeling of the least-confident items, soft labels."""
