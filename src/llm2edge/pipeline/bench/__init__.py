"""The benchmark runner: per-item latency of an edge bundle against torch eager, ORTModel and the LLM.

Every system runs in its own worker process, one runtime per process with its thread count fixed; the parent
times the pipe round trip of each call. `llm2edge bench` and the pytest-benchmark suite in bench/ drive the
same workers, so both measure the same thing. One module per concern:

- `spec`: what a worker runs (SystemSpec, the kinds) and what a measurement is (SpeedRow).
- `texts`: the fixed text sample every system classifies.
- `runners`: loading each kind of system (edge, torch, ORTModel, LLM) into a classify-a-batch function.
- `worker`: the worker process and its pipe protocol (`python -m llm2edge.pipeline.bench.worker SPEC TEXTS`)
  and the parent's handle on it (`Worker`).
- `timing`: how many calls to time, timing them, per-item rows, fresh-process peak memory.
- `report`: the markdown table, ratio sentences, the plot, speed.md/json/png.
- `run`: `llm2edge bench` itself (BenchConfig, the systems for a bundle, run_bench).

Nothing is re-exported here: the worker module runs with `python -m`, and importing it from the package
first would load it twice. No module imports torch, transformers or the hub at the top, so the edge rows
work on a base install.
"""
