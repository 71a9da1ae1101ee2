"""The hub: LLM labeling (`label`), curation (`curate`) and student training (`train`).

Each of those three subpackages needs the `hub` extra and says so when imported (MissingExtraError with
the pip command). This package itself stays importable on a base install, for what is light and shared:
`tasks` (the shipped task files) and `models` (where models come from: packaged defaults, folders, GGUF
files, Hugging Face ids). The hub imports export and edge, never the pipeline or the CLI.
"""
