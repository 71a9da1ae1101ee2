"""`llm2edge predict`: classify texts with an edge bundle (base install: onnxruntime, tokenizers, numpy)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from llm2edge.cli.fields import add_arguments as add_arguments_from
from llm2edge.cli.fields import options, own
from llm2edge.console import say, warn
from llm2edge.defaults import PROVIDER, RAY_STALL_TIMEOUT_S
from llm2edge.errors import ConfigError, DataError


def _positive_seconds(text: str) -> float:
    """argparse type: a number of seconds > 0 (a usage error, exit 2, otherwise)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds > 0")
    return value


def _warn_counts(truncated: int, empty: int, max_length: int) -> None:
    """The end-of-run warnings: texts cut to the bundle's max_length, empty texts classified."""
    if truncated:
        warn(f"{truncated} text(s) truncated to max_length={max_length} tokens")
    if empty:
        warn(f"{empty} empty text(s) classified")


class _Progress:
    """A one-line progress counter on stderr (rows done, rows per second)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, rows: int) -> None:
        rate = rows / max(time.perf_counter() - self.start, 1e-9)
        print(f"\rpredicted {rows:,} rows ({rate:,.0f} rows/s)", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        print(file=sys.stderr, flush=True)


HELP = "Classify texts with an edge bundle; one row per text, in input order."
DESCRIPTION = """Classify texts with an edge bundle; writes one row per text, in input order.

JSONL (default): {"id": ..., "label": ..., "probs": {label: p, ...}}.
CSV: columns id, label, p_<label>... (with --with-text: id, text, label, p_<label>...).
With --defer: a `deferred` field (JSONL: true/false; CSV: a column after label).
A multi-label bundle writes the label set (JSONL: a list; CSV: names joined with `;`) and each label's own
probability; its --defer is a band: a row is deferred when some |p_l - t_l| < DEFER (README "Deferral").
Texts come from the arguments, --input FILE, or stdin (one text per line; --input-format jsonl/csv).

Folder mode (--input DIR or GLOB, or --engine ray): every csv/jsonl/parquet file in it, written as Parquet
parts (id, [text,] label, [deferred,] p_<label>...) into --output DIR, one row per input row, ids as each
file alone would get. --engine ray runs one Ray actor per worker (`pip install 'llm2edge[ray]'`)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """predict's arguments (argparse: `llm2edge predict` imports no CLI framework): PredictJob's fields and
    what single-file predict adds."""
    from llm2edge.pipeline.predict_job import PredictJob  # not `folders`: parsed at every start

    add_arguments_from(parser, [
        own("texts", "texts", type=list, help="Texts to classify (else --input or stdin)."),
        own("bundle", "--bundle", "-b", type=Path, required=True,
            help="Bundle folder made by `llm2edge export`."),
        own("input", "--input", "-i", help="Input file (csv, jsonl, parquet, txt), '-' for stdin, or a "
                                           "folder or glob of files (folder mode)."),
        own("output", "--output", "-o", help="Output file (default: stdout); folder mode: a new folder."),
        own("fmt", "--format", "-f", help="csv or jsonl (default: from --output's suffix, else jsonl)."),
        *options(PredictJob),
        own("provider", "--provider", default=PROVIDER, help="cpu, cuda or cuda:N (GPU N)."),
        own("resume", "--resume", type=bool, default=False,
            help="Continue a crashed run: keep --output's complete rows, skip them."),
        own("progress", "--progress", type=bool,
            help="Progress on stderr (default: when stderr is a terminal)."),
        own("deferred_out", "--deferred-out", type=Path,
            help="Also write the deferred items here (id,text CSV) as input for `llm2edge label --id-col "
                 "id`."),
        own("stall_timeout", "--stall-timeout", type=float, default=RAY_STALL_TIMEOUT_S, metavar="SECONDS",
            parse=_positive_seconds, help="--engine ray: stop the run with one line naming the stage when "
                                          "nothing progresses (a worker ready, a block read or written) for "
                                          "this long."),
        own("verbose", "--verbose", type=bool, default=False,
            help="--engine ray: show Ray's own log lines on stderr."),
    ], enforce_choices=("engine",))


def run(args: argparse.Namespace) -> None:
    """Run predict with parsed arguments: folder mode for a folder or glob or --engine ray, else one file."""
    options = vars(args)
    engine, address, workers = options.pop("engine"), options.pop("address"), options.pop("workers")
    ray_options = {"stall_timeout": options.pop("stall_timeout"), "verbose": options.pop("verbose")}
    many = options["input"] not in (None, "-")  # texts as arguments or stdin: no folder code at start-up
    if many:
        from llm2edge.pipeline.folders import names_many

        many = names_many(options["input"])
    if engine != "local" or many:
        predict_folder(engine=engine, address=address, workers=workers, **ray_options, **options)
        return
    if address is not None or workers is not None:
        raise ConfigError("--address and --workers need --engine ray")
    predict(**options)


def predict_folder(*, texts: list[str] | None, bundle: Path, input: str | None, output: str | None,
                   fmt: str | None, text_col: str, id_col: str | None, input_format: str | None,
                   batch_size: int, chunk_size: int, threads: int | None, provider: str, with_text: bool,
                   resume: bool, progress: bool | None, defer: str, deferred_out: Path | None, engine: str,
                   address: str | None, workers: int | None, stall_timeout: float, verbose: bool) -> None:
    """Folder mode (see DESCRIPTION): check the options that do not apply, then run the job."""
    from llm2edge.pipeline.folders import PredictJob, run_job

    unused = {"texts": texts, "--format": fmt, "--resume": resume, "--deferred-out": deferred_out,
              "--provider other than cpu": provider != PROVIDER}
    given = [name for name, value in unused.items() if value]
    if given:
        raise ConfigError(f"folder mode (--input DIR|GLOB, --engine ray) takes no {given[0]}: it writes "
                          "Parquet parts into --output DIR")
    if input is None or output is None or output == "-":
        raise ConfigError("folder mode needs --input DIR|GLOB|FILE and --output DIR")
    job = PredictJob(bundle=bundle, inputs=input, output=Path(output), text_col=text_col, id_col=id_col,
                     input_format=input_format, batch_size=batch_size, chunk_size=chunk_size,
                     with_text=with_text,
                     defer=defer, threads=threads, engine=engine, address=address, workers=workers,
                     stall_timeout=stall_timeout, verbose=verbose)
    show = bool(sys.stderr and sys.stderr.isatty()) if progress is None else progress
    bar = _Progress() if show else None
    try:
        summary = run_job(job, on_rows=bar)
    finally:
        if bar is not None:
            bar.close()
    _warn_counts(summary.truncated, summary.empty, summary.max_length)
    rate = summary.rows / max(summary.seconds, 1e-9)
    where = f"{summary.workers} Ray worker(s)" if summary.engine == "ray" else "this process"
    say(f"llm2edge: {summary.rows:,} rows from {summary.files} file(s) in {summary.seconds:.1f} s "
        f"({rate:,.0f} rows/s) on {where} -> {summary.output}")


def predict(*, texts: list[str] | None, bundle: Path, input: str | None, output: str | None, fmt: str | None,
            text_col: str, id_col: str | None, input_format: str | None, batch_size: int, chunk_size: int,
            threads: int | None, provider: str, with_text: bool, resume: bool, progress: bool | None,
            defer: str, deferred_out: Path | None) -> None:
    """Classify texts with an edge bundle (see DESCRIPTION); every argument comes from the command line."""
    from llm2edge.edge.classifier import Classifier
    from llm2edge.edge.defer import resolve_defer
    from llm2edge.edge.stream import output_format, predict_to_path
    from llm2edge.outputs import distinct_files
    from llm2edge.records import Record, default_id_col, detect_format, iter_records, stable_id

    if texts and input is not None:
        raise ConfigError("give texts as arguments or --input, not both")
    kind = output_format(output, fmt)  # fail on a bad --format before loading anything
    if resume and (output is None or output == "-"):
        raise ConfigError("--resume needs --output FILE")
    if not texts and input is None:
        if sys.stdin is None:  # started with stdin closed (`predict <&-`)
            raise ConfigError("no input: standard input is closed; give texts as arguments or --input FILE")
        if sys.stdin.isatty():
            raise ConfigError("no input: give texts as arguments, --input FILE, or pipe texts on stdin")
        input = "-"
    if input is not None and input != "-" and not Path(input).is_file():
        raise DataError(f"{input}: no such file")
    distinct_files({"--input": input, "--output": output, "--deferred-out": deferred_out})
    clf = Classifier.load(bundle, threads=threads, providers=[provider])
    threshold = resolve_defer(clf.info, defer)
    if texts:
        records = (Record(id=stable_id(n, t), text=t, line=n + 1) for n, t in enumerate(texts))
        source = {"text_col": None, "id_col": None, "input_format": "arguments"}
    else:
        assert input is not None
        if id_col is None:
            id_col = default_id_col(input, fmt=input_format, text_col=text_col)
        records = iter_records(input, text_col=text_col, id_col=id_col, fmt=input_format, allow_empty=True)
        source = {"text_col": text_col, "id_col": id_col, "input_format": detect_format(input, input_format)}
    show = bool(sys.stderr and sys.stderr.isatty()) if progress is None else progress
    bar = _Progress() if show else None
    try:
        summary = predict_to_path(clf, records, output, fmt=kind, batch_size=batch_size,
                                  chunk_size=chunk_size, with_text=with_text, resume=resume, on_chunk=bar,
                                  defer=threshold, deferred_out=deferred_out, source=source)
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(1) from None
    finally:
        if bar is not None:
            bar.close()
    _warn_counts(summary.truncated, summary.empty, clf.max_length)
    if threshold is not None:
        share = summary.deferred / summary.rows if summary.rows else 0.0
        where = f" -> {deferred_out}" if deferred_out is not None else ""
        rule = (f"a label's probability within {threshold:.6g} of its threshold" if clf.multi_label
                else f"top probability < {threshold:.6g}")
        say(f"llm2edge: {summary.deferred:,} of {summary.rows:,} rows deferred ({share:.1%}, {rule}){where}")
    if show:
        resumed = f" (resumed after {summary.skipped:,})" if summary.skipped else ""
        rate = summary.rows / max(summary.seconds, 1e-9)
        say(f"llm2edge: {summary.rows:,} rows in {summary.seconds:.1f} s ({rate:,.0f} rows/s){resumed}")

