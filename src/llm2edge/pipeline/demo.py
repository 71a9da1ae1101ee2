"""`llm2edge demo`: the whole pipeline on a small labeled dataset, ending in an accuracy and speed report.

label the train split with the embedded LLM (constrained scoring) -> curate (cleanlab, drop likely errors) ->
train the embedded MiniLM student on the LLM labels -> export an int8 bundle -> classify the test split with
the edge runtime -> time edge vs LLM per item -> OUT/report.md (and a table on the terminal).

The test split is labeled by the LLM too, so the LLM and the edge model are scored against gold on the same
items. Every stage writes into OUT and is reused on a rerun: the label store resumes item by item, and
curate/train/export are skipped when their output exists with a stamp matching the hash of their inputs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.errors import DataError, Llm2EdgeError
from llm2edge.extras import require
from llm2edge.metrics import Report, classification_report
from llm2edge.pipeline.bench.report import fmt_ms
from llm2edge.records import read_records

require("hub")
require("export")

#: The example shipped in the repository (MIT): examples/reddit_humor/{train,test}.csv.
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "reddit_humor"
STAMP = "demo-stamp.json"
EXPORT_STAMP = "bundle-stamp.json"  # next to the bundle: the bundle folder holds only checksummed files
NO_LABEL = "<no label>"


@dataclass(kw_only=True)
class DemoConfig:
    """Options of `llm2edge demo`; None sizes pick the full or --quick defaults."""

    out: str | Path = "llm2edge-demo"
    dataset: str | Path | None = None  # folder with train.csv and test.csv (text,label)
    task: str = "humor"
    quick: bool = False
    threads: int | None = None  # labeling/training threads (default 1: see run_demo)
    train_items: int | None = None  # default: 400 sampled from train.csv (quick: 40)
    test_items: int | None = None  # default: 200 sampled from test.csv (quick: 24)
    shots: int = 0
    calibrate: bool = True
    curate: str = "drop"  # drop | flag | none
    epochs: int | None = None  # default 2 (quick: head-only training on frozen embeddings)
    class_weight: str = "balanced"  # student loss weights: the LLM's labels are skewed (e.g. 80% funny)
    lr: float = 3e-4  # ~22 optimizer steps on 400 items: at 1e-4 the student stayed on the majority label
    max_length: int = 64
    bench_budget_s: float | None = None  # timed seconds per system (default 3, quick 0.5)
    seed: int = 0
    progress: bool = True

    def sizes(self) -> tuple[int | None, int, int, float]:
        """(train items or None for all, test items, epochs, bench budget) after the quick/full defaults."""
        train = self.train_items if self.train_items is not None else (40 if self.quick else 400)
        test = self.test_items if self.test_items is not None else (24 if self.quick else 200)
        epochs = self.epochs if self.epochs is not None else (1 if self.quick else 2)
        budget = self.bench_budget_s if self.bench_budget_s is not None else (0.5 if self.quick else 3.0)
        return train, test, epochs, budget


@dataclass
class DemoResult:
    """What the demo measured; `reused` names the stages taken from a previous run."""

    out: Path
    report: Path
    llm_test: Report
    edge_test: Report
    llm_train: Report
    llm_ms: float | None
    edge_ms: float | None
    bundle_mb: float
    seconds: float
    reused: list[str] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class _Log:
    """Stage progress on stderr: '[3/8] train ... done in 41.2 s' or '... reused'."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.n = total, enabled, 0
        self.t0 = time.perf_counter()
        self.stages: dict[str, float] = {}
        self.reused: list[str] = []
        self._name = ""
        self._start = 0.0

    def say(self, message: str) -> None:
        if self.enabled:
            print(f"llm2edge demo: {message}", file=sys.stderr, flush=True)

    def start(self, name: str, what: str) -> None:
        self.n += 1
        self._name, self._start = name, time.perf_counter()
        self.say(f"[{self.n}/{self.total}] {what} ...")

    def done(self, note: str = "", *, reused: bool = False) -> None:
        seconds = time.perf_counter() - self._start
        self.stages[self._name] = round(seconds, 1)
        if reused:
            self.reused.append(self._name)
            self.say(f"      {self._name}: reused ({note})" if note else f"      {self._name}: reused")
        else:
            self.say(f"      {self._name}: done in {seconds:.1f} s" + (f" ({note})" if note else ""))


def _hash(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:16]


def _stamp_ok(folder: Path, key: str, name: str = STAMP) -> bool:
    """True if `folder` holds a finished stage output made from inputs hashing to `key`."""
    path = folder / name
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("key") == key
    except (OSError, json.JSONDecodeError):
        return False


def _write_stamp(folder: Path, key: str, name: str = STAMP, **info: Any) -> None:
    text = json.dumps({"key": key, **info}, indent=1, default=str) + "\n"
    (folder / name).write_text(text, encoding="utf-8")


def _resolve_dataset(dataset: str | Path | None) -> Path:
    """The folder with train.csv and test.csv (the shipped example by default)."""
    folder = Path(dataset) if dataset is not None else EXAMPLE
    if not folder.is_dir():
        hint = "" if dataset is not None else " (the example ships in the repository; pass --dataset DIR)"
        raise DataError(f"{folder}: dataset folder not found{hint}")
    for name in ("train.csv", "test.csv"):
        if not (folder / name).is_file():
            raise DataError(f"{folder / name}: missing (a demo dataset is a folder with train.csv, test.csv)")
    return folder


def prepare_split(src: Path, dst: Path, n: int | None, seed: int) -> list[tuple[str, str, str]]:
    """Sample `n` rows (all when None) of a text,label file into dst (id,text,label); returns the rows."""
    records = read_records(src, text_col="text", label_col="label", require_label=True)
    rows = [(r.id, r.text, str(r.label)) for r in records]
    if n is not None and n < len(rows):
        picked = sorted(random.Random(seed).sample(range(len(rows)), n))
        rows = [rows[i] for i in picked]
    _write_csv(dst, [("id", "text", "label"), *rows])
    return rows


def _llm_labels(labels_path: Path, rows: list[tuple[str, str, str]]) -> list[str]:
    """The LLM's label of each row (NO_LABEL where it failed)."""
    from llm2edge.records import read_jsonl

    by_id = {str(r.get("id")): r.get("label") for r in read_jsonl(labels_path) if not r.get("error")}
    return [str(by_id.get(i) or NO_LABEL) for i, _, _ in rows]


def _llm_report(labels_path: Path, rows: list[tuple[str, str, str]], names: list[str]) -> Report:
    """LLM labels vs gold on `rows` (an item without a label counts as wrong)."""
    pred = _llm_labels(labels_path, rows)
    return classification_report([g for _, _, g in rows], pred, [*names, NO_LABEL] if NO_LABEL in pred
                                 else names)


def _label(train_rows: list[tuple[str, str, str]], test_rows: list[tuple[str, str, str]], out: Path,
           config: DemoConfig, threads: int, log: _Log) -> None:
    """Label train and test items in one LLM run (the label store resumes; finished items are skipped).

    Writes out/labels/all.jsonl (the store), then train.jsonl and test.jsonl (rewritten only on a change).
    """
    from llm2edge.hub.label.runner import LabelConfig, label_file
    from llm2edge.records import read_jsonl

    items = out / "data" / "label_items.csv"
    _write_csv(items, [("id", "text"), *((f"train:{i}", t) for i, t, _ in train_rows),
                       *((f"test:{i}", t) for i, t, _ in test_rows)])
    n = len(train_rows) + len(test_rows)
    how = f"constrained scoring, {config.shots}-shot{', calibrated' if config.calibrate else ''}"
    log.start("label", f"labeling {len(train_rows)} train + {len(test_rows)} test items with the embedded "
                       f"LLM ({how})")
    store = out / "labels" / "all.jsonl"
    summary = label_file(LabelConfig(data=items, task=config.task, out=store, id_col="id", shots=config.shots,
                                     calibrate=config.calibrate, threads=threads, batch_size=8,
                                     progress=config.progress))
    latest: dict[str, dict[str, Any]] = {}
    for row in read_jsonl(store):
        if not row.get("error") or str(row.get("id")) not in latest:
            latest[str(row.get("id"))] = row
    for split, rows in (("train", train_rows), ("test", test_rows)):
        lines = []
        for rid, _, _ in rows:
            row = latest.get(f"{split}:{rid}")
            if row is not None:
                lines.append(json.dumps({**row, "id": rid}, ensure_ascii=False))
        _write_if_changed(out / "labels" / f"{split}.jsonl", "\n".join(lines) + "\n")
    if summary.labeled == 0 and summary.failed == 0 and summary.skipped == n:
        log.done(f"{n} items already labeled", reused=True)
    else:
        log.done(f"{summary.labeled} labeled, {summary.skipped} reused, {summary.failed} failed, "
                 f"{summary.items_per_s:.2f} items/s")


def _write_if_changed(path: Path, text: str) -> None:
    """Write `text` unless the file already holds exactly it (keeps stamps made from it valid)."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _write_csv(path: Path, rows: list[tuple[str, ...]]) -> None:
    """A CSV file from rows (header first), rewritten only on a change."""
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    _write_if_changed(path, buf.getvalue())


def _curate(labels: Path, out: Path, config: DemoConfig, threads: int, log: _Log
            ) -> tuple[Path, dict[str, Any]]:
    """cleanlab on the LLM labels (drop or flag likely errors); the labels file to train on."""
    log.start("curate", f"curating the LLM labels (cleanlab, {config.curate})")
    if config.curate == "none":
        log.done("skipped (--curate none)")
        return labels, {"curation": "none"}
    key = _hash({"labels": _file_hash(labels), "action": config.curate, "seed": config.seed})
    curated = out / "labels.jsonl"
    if _stamp_ok(out, key) and curated.is_file():
        info = json.loads((out / STAMP).read_text(encoding="utf-8"))
        log.done(f"{info.get('note', '')}", reused=True)
        return curated, info
    from llm2edge.hub.curate.confident import CurateConfig, curate

    try:
        result = curate(CurateConfig(labels=labels, out=out, action=config.curate, threads=threads,
                                     seed=config.seed, folds=5, progress=config.progress))
    except (Llm2EdgeError, ValueError) as exc:  # e.g. the LLM gave one label to everything
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.done(f"curation skipped: {first}")
        return labels, {"curation": f"skipped: {first}"}
    verb = "dropped" if config.curate == "drop" else "flagged"
    note = f"{verb} {result.n_flagged} of {result.n_rows} labels"
    _write_stamp(out, key, note=note, n_rows=result.n_rows, n_flagged=result.n_flagged, action=config.curate)
    log.done(note)
    return curated, {"curation": note, "n_rows": result.n_rows, "n_flagged": result.n_flagged}


def _train(data: Path, test_csv: Path, out: Path, names: list[str], config: DemoConfig, threads: int,
           epochs: int, log: _Log) -> None:
    """Fine-tune the embedded MiniLM on the (curated) LLM labels; reused when the inputs are unchanged."""
    freeze = config.quick
    settings = {"data": _file_hash(data), "epochs": epochs, "max_length": config.max_length, "labels": names,
                "seed": config.seed, "freeze": freeze, "class_weight": config.class_weight, "lr": config.lr}
    key = _hash(settings)
    how = "head only, frozen encoder" if freeze else f"{epochs} epoch(s), max_length {config.max_length}"
    how += f", lr {config.lr:g}, class weights {config.class_weight}"
    log.start("train", f"training the MiniLM-L6 student on the LLM labels ({how})")
    if _stamp_ok(out, key) and (out / "model.safetensors").is_file():
        log.done("inputs unchanged", reused=True)
        return
    from llm2edge.hub.train import TrainConfig, train

    if out.exists():
        shutil.rmtree(out)
    result = train(TrainConfig(data=data, out=out, epochs=epochs, max_length=config.max_length,
                               seed=config.seed, threads=threads, labels=names, freeze_encoder=freeze,
                               class_weight=config.class_weight, lr=config.lr,
                               progress=config.progress, resume=False))
    _write_stamp(out, key, **settings, seconds=round(result.seconds, 1))
    log.done(f"{result.examples_per_second:.1f} examples/s")


def _export(model: Path, out: Path, config: DemoConfig, threads: int, log: _Log) -> None:
    """Export the student to an int8 ONNX bundle; reused when the model is unchanged."""
    key = _hash({"model": json.loads((model / STAMP).read_text(encoding="utf-8"))["key"], "quantize": "int8"})
    log.start("export", "exporting the int8 ONNX bundle (validated against torch)")
    if _stamp_ok(out.parent, key, EXPORT_STAMP) and (out / "manifest.json").is_file():
        log.done("model unchanged", reused=True)
        return
    from llm2edge.export import ExportConfig, export_bundle

    if out.exists():
        shutil.rmtree(out)
    result = export_bundle(ExportConfig(model=model, out=out, quantize="int8", threads=threads,
                                        verbose=config.progress))
    _write_stamp(out.parent, key, EXPORT_STAMP, quantization=result.quantization)
    agree = result.validation.get("agreement_int8")
    log.done(result.quantization + (f", int8 agrees with torch on {agree:.1%}" if agree is not None else ""))


def _bench(bundle: Path, config: DemoConfig, budget: float, log: _Log) -> dict[str, Any]:
    """Per-item latency (1 thread each, batch 1) of the edge bundle and of the LLM's constrained scoring."""
    from llm2edge.pipeline.bench.spec import SystemSpec
    from llm2edge.pipeline.bench.texts import sample_texts
    from llm2edge.pipeline.bench.timing import measure

    log.start("bench", "timing edge vs LLM per item (1 thread each, batch 1, own process each)")
    texts = sample_texts(bundle.parent / "data" / "test.csv", n=64, seed=config.seed)
    out: dict[str, Any] = {}
    specs = [SystemSpec(name="edge int8 b1", kind="edge", path=str(bundle)),
             SystemSpec(name="LLM scoring b1", kind="llm-score", task=config.task)]
    for spec in specs:
        try:
            row = measure(spec, texts, budget_s=budget if spec.kind == "edge" else 3 * budget,
                          log_dir=bundle.parent / "bench-logs", warmup=1 if config.quick else 2,
                          min_rounds=3 if config.quick else 10)
            out[spec.name] = asdict(row)
        except Llm2EdgeError as exc:
            out[spec.name] = {"error": str(exc)}
    edge, llm = out["edge int8 b1"].get("per_item_ms"), out["LLM scoring b1"].get("per_item_ms")
    log.done(f"edge {edge:.3g} ms/item, LLM {llm:.3g} ms/item" if edge and llm else "partial")
    return out


def _dir_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def render_report(res: DemoResult, meta: dict[str, Any]) -> str:
    """The demo's report as markdown."""
    def f(x: float | None, spec: str = ".3f") -> str:
        return "—" if x is None else format(x, spec)

    speedup = res.llm_ms / res.edge_ms if res.llm_ms and res.edge_ms else None

    def per_s(ms: float | None) -> str:
        return f(1000 / ms, ",.1f") if ms else "—"

    lines = [
        f"# llm2edge demo: {meta['dataset_name']} ({' / '.join(meta['labels'])})", "",
        f"Task `{meta['task']}`; LLM {meta['llm']} (constrained scoring, {meta['shots']}-shot"
        f"{', contextual calibration' if meta['calibrate'] else ''}); student all-MiniLM-L6-v2 trained on "
        f"{meta['n_train_used']} LLM labels ({meta['curation']}; "
        + ("balanced class weights in the loss, against the LLM's skew" if meta["class_weight"] == "balanced"
           else "no class weights")
        + f"); test split: {res.edge_test.n} items, "
        "scored against gold.", "",
        "| model | accuracy | weighted F1 | macro F1 | ms/item | items/s | size |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| LLM labels ({meta['llm']}) | {f(res.llm_test.accuracy)} | {f(res.llm_test.weighted_f1)} | "
        f"{f(res.llm_test.macro_f1)} | {fmt_ms(res.llm_ms) if res.llm_ms else '—'} | {per_s(res.llm_ms)} | "
        f"{meta['llm_mb']:.0f} MB |",
        f"| edge student (MiniLM-L6, {meta['quantization']} ONNX) | {f(res.edge_test.accuracy)} | "
        f"{f(res.edge_test.weighted_f1)} | {f(res.edge_test.macro_f1)} | "
        f"{fmt_ms(res.edge_ms) if res.edge_ms else '—'} | "
        f"{per_s(res.edge_ms)} | {res.bundle_mb:.1f} MB |",
        f"| majority class ({meta['majority']}) | {f(meta['majority_acc'])} | — | — | — | — | — |",
        "",
        f"- Speed-up: the edge model is **{f(speedup, '.3g')}×** faster per item than the LLM "
        "(batch 1, 1 thread each, each in its own process; median call)." if speedup else
        "- Speed-up: not measured (see bench in report.json).",
        f"- LLM label accuracy on the training split: {f(res.llm_train.accuracy)} "
        f"(weighted F1 {f(res.llm_train.weighted_f1)}, n={res.llm_train.n}).",
        f"- The edge model agrees with the LLM's labels on {meta['edge_llm_agreement']:.1%} of the test "
        "items (it learns its teacher; the LLM's test labels are "
        + ", ".join(f"{share:.0%} {name}" for name, share in meta["llm_label_share"].items()) + ").",
        f"- Bundle: `{meta['bundle']}` ({res.bundle_mb:.1f} MB); predictions: `{meta['predictions']}`.",
        f"- Wall time: {res.seconds:.0f} s"
        + (f" (reused: {', '.join(res.reused)})" if res.reused else "") + ".",
        "", "| stage | seconds |", "|---|---:|",
        *[f"| {name}{' (reused)' if name in res.reused else ''} | {sec:.1f} |"
          for name, sec in res.stages.items()],
        "", "## Edge model on the test split", "", res.edge_test.table(),
        "", "## LLM labels on the test split", "", res.llm_test.table(), "",
    ]
    return "\n".join(lines)


def _print_table(res: DemoResult, meta: dict[str, Any]) -> None:
    """The headline table on the terminal (rich when available)."""
    speedup = res.llm_ms / res.edge_ms if res.llm_ms and res.edge_ms else None
    rows = [(f"LLM labels ({meta['llm']})", res.llm_test, res.llm_ms, f"{meta['llm_mb']:.0f} MB"),
            (f"edge student ({meta['quantization']})", res.edge_test, res.edge_ms, f"{res.bundle_mb:.1f} MB")]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich ships with the hub extra
        for name, rep, ms, size in rows:
            print(f"{name}: accuracy {rep.accuracy:.3f}, weighted F1 {rep.weighted_f1:.3f}, "
                  f"{ms or float('nan'):.3g} ms/item, {size}")
    else:
        table = Table(title=f"llm2edge demo: {meta['dataset_name']} (test split, n={res.edge_test.n})")
        for col in ("model", "accuracy", "weighted F1", "ms/item", "size"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for name, rep, ms, size in rows:
            table.add_row(name, f"{rep.accuracy:.3f}", f"{rep.weighted_f1:.3f}", fmt_ms(ms) if ms else "—",
                          size)
        Console().print(table)
    if speedup:
        print(f"edge is {speedup:.3g}x faster per item than the LLM; report: {res.report}")
    else:
        print(f"report: {res.report}")


def run_demo(config: DemoConfig) -> DemoResult:
    """Run (or resume) the whole demo into config.out and write report.md / report.json."""
    from llm2edge.edge import Classifier
    from llm2edge.hub.label.task import load_task
    from llm2edge.hub.models import default_llm_gguf

    t0 = time.perf_counter()
    if config.curate not in ("drop", "flag", "none"):
        raise DataError(f"--curate must be drop, flag or none, not '{config.curate}'")
    if config.class_weight not in ("none", "balanced"):
        raise DataError(f"--class-weight must be none or balanced, not '{config.class_weight}'")
    dataset = _resolve_dataset(config.dataset)
    task = load_task(config.task)
    names = list(task.label_names)
    n_train, n_test, epochs, budget = config.sizes()
    # One thread unless asked: on a busy 2-core machine two torch threads ran 13-26x slower than one
    # (MEASURED.md), and the demo must finish in minutes anywhere; on a quiet machine 2 threads gain ~1.5x.
    threads = config.threads or 1
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    log = _Log(7, config.progress)

    log.start("data", f"preparing {dataset.name}: train {n_train or 'all'}, test {n_test} items")
    train_rows = prepare_split(dataset / "train.csv", out / "data" / "train.csv", n_train, config.seed)
    test_rows = prepare_split(dataset / "test.csv", out / "data" / "test.csv", n_test, config.seed)
    bad = sorted({g for _, _, g in train_rows + test_rows} - set(names))
    if bad:
        raise DataError(f"{dataset}: gold label(s) {', '.join(bad)} are not labels of task '{task.name}' "
                        f"({', '.join(names)}); pass the matching --task")
    log.done(f"{len(train_rows)} train, {len(test_rows)} test")

    _label(train_rows, test_rows, out, config, threads, log)
    train_labels, cur = _curate(out / "labels" / "train.jsonl", out / "curated", config, threads, log)
    _train(train_labels, out / "data" / "test.csv", out / "model", names, config, threads, epochs, log)
    _export(out / "model", out / "bundle", config, threads, log)

    log.start("classify", f"classifying the {len(test_rows)} test items with the edge runtime")
    clf = Classifier.load(out / "bundle", threads=1)
    t = time.perf_counter()
    proba = clf.predict_proba([text for _, text, _ in test_rows])
    classify_s = time.perf_counter() - t
    pred = [clf.labels[i] for i in proba.argmax(axis=1)]
    pred_path = out / "predictions.csv"
    with pred_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label", "gold", *(f"p_{name}" for name in clf.labels)])
        for (rid, _, gold), label, p in zip(test_rows, pred, proba):
            writer.writerow([rid, label, gold, *(f"{x:.6f}" for x in p)])
    log.done(f"{len(test_rows) / classify_s:,.0f} items/s in one call, 1 thread")

    bench = _bench(out / "bundle", config, budget, log)
    gold = [g for _, _, g in test_rows]
    edge_report = classification_report(gold, pred, names)
    llm_test = _llm_report(out / "labels" / "test.jsonl", test_rows, names)
    llm_train = _llm_report(out / "labels" / "train.jsonl", train_rows, names)
    majority = max(names, key=lambda n: sum(1 for g in gold if g == n))
    llm_pred = _llm_labels(out / "labels" / "test.jsonl", test_rows)
    agreement = sum(a == b for a, b in zip(pred, llm_pred)) / len(pred)
    share = {n: sum(1 for x in llm_pred if x == n) / len(llm_pred) for n in names}
    n_used = sum(1 for line in train_labels.read_text(encoding="utf-8").splitlines() if line.strip())
    res = DemoResult(out=out, report=out / "report.md", llm_test=llm_test, edge_test=edge_report,
                     llm_train=llm_train, llm_ms=bench["LLM scoring b1"].get("per_item_ms"),
                     edge_ms=bench["edge int8 b1"].get("per_item_ms"), bundle_mb=_dir_mb(out / "bundle"),
                     seconds=time.perf_counter() - t0, reused=log.reused, stages=log.stages)
    gguf = default_llm_gguf()
    meta = {"dataset_name": dataset.name, "labels": names, "task": task.name, "llm": gguf.stem,
            "llm_mb": gguf.stat().st_size / 1e6, "shots": config.shots, "calibrate": config.calibrate,
            "curation": cur.get("curation", ""), "n_train_used": n_used, "class_weight": config.class_weight,
            "quantization": clf.info.quantization,
            "bundle": str(out / "bundle"), "predictions": str(pred_path), "majority": majority,
            "majority_acc": sum(1 for g in gold if g == majority) / len(gold),
            "edge_llm_agreement": agreement, "llm_label_share": share}
    res.report.write_text(render_report(res, meta), encoding="utf-8")
    (out / "report.json").write_text(json.dumps({
        "meta": meta, "seconds": round(res.seconds, 1), "stages": res.stages, "reused": res.reused,
        "llm_test": llm_test.to_dict(), "edge_test": edge_report.to_dict(), "llm_train": llm_train.to_dict(),
        "bench": bench, "bundle_mb": res.bundle_mb}, indent=2, default=str) + "\n", encoding="utf-8")
    if config.progress:
        _print_table(res, meta)
    return res
