"""The hub: LLM labeling, curation and student training. Needs the `hub` extra."""
