"""LLM labeling with label probabilities (in-process Hugging Face models or OpenAI-compatible servers)."""
