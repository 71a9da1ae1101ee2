"""Reproducible experiments: datasets x labeler x curation intervention x student, as one table."""
