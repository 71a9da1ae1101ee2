"""The pipeline: what drives every stage end to end (demo, experiment grid, benchmark runner).

It sits above the stages (core <- edge <- export <- hub <- pipeline <- cli) and imports them; nothing below
imports it.
"""
