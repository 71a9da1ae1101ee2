"""The demo's stages (data, label, curate, train, export, classify, bench), each reused when its inputs match.

A stage that is expensive writes a stamp next to its output: the digest of its inputs (file checksums and
settings, `llm2edge.hashing`). On a rerun the stage is skipped when the stamp matches and its output exists;
the label store resumes item by item on its own. `StageLog` prints one progress line per stage on stderr.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.console import say
from llm2edge.edge import Classifier
from llm2edge.errors import DataError, Llm2EdgeError
from llm2edge.hashing import digest, file_digest
from llm2edge.pipeline.bench.spec import SystemSpec
from llm2edge.pipeline.bench.texts import sample_texts
from llm2edge.pipeline.bench.timing import measure
from llm2edge.pipeline.demo.config import EXAMPLE, DemoConfig
from llm2edge.records import read_jsonl, read_records

STAMP = "demo-stamp.json"
EXPORT_STAMP = "bundle-stamp.json"  # next to the bundle: the bundle folder holds only checksummed files
#: A demo row: (id, text, gold label).
Row = tuple[str, str, str]


class StageLog:
    """Stage progress on stderr: '[3/8] train ... done in 41.2 s' or '... reused'."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total, self.enabled, self.n = total, enabled, 0
        self.stages: dict[str, float] = {}
        self.reused: list[str] = []
        self._name = ""
        self._start = 0.0

    def say(self, message: str) -> None:
        """One progress line (when enabled)."""
        if self.enabled:
            say(f"llm2edge demo: {message}")

    def start(self, name: str, what: str) -> None:
        """Announce stage `name` and start its clock."""
        self.n += 1
        self._name, self._start = name, time.perf_counter()
        self.say(f"[{self.n}/{self.total}] {what} ...")

    def done(self, note: str = "", *, reused: bool = False) -> None:
        """Record the stage's seconds (and whether it was reused) and say so."""
        seconds = time.perf_counter() - self._start
        self.stages[self._name] = round(seconds, 1)
        if reused:
            self.reused.append(self._name)
            self.say(f"      {self._name}: reused ({note})" if note else f"      {self._name}: reused")
        else:
            self.say(f"      {self._name}: done in {seconds:.1f} s" + (f" ({note})" if note else ""))


def stamp_ok(folder: Path, key: str, name: str = STAMP) -> bool:
    """True if `folder` holds a finished stage output made from inputs hashing to `key`."""
    try:
        return json.loads((folder / name).read_text(encoding="utf-8")).get("key") == key
    except (OSError, json.JSONDecodeError):
        return False


def write_stamp(folder: Path, key: str, name: str = STAMP, **info: Any) -> None:
    """Mark `folder`'s output as made from inputs hashing to `key` (with `info` for the reader)."""
    text = json.dumps({"key": key, **info}, indent=1, default=str) + "\n"
    (folder / name).write_text(text, encoding="utf-8")


def write_if_changed(path: Path, text: str) -> None:
    """Write `text` unless the file already holds exactly it (keeps stamps made from it valid)."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_csv(path: Path, rows: list[tuple[str, ...]]) -> None:
    """A CSV file from rows (header first), rewritten only on a change."""
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    write_if_changed(path, buf.getvalue())


def resolve_dataset(dataset: str | Path | None) -> Path:
    """The folder with train.csv and test.csv (the shipped example by default)."""
    folder = Path(dataset) if dataset is not None else EXAMPLE
    if not folder.is_dir():
        hint = "" if dataset is not None else " (the example ships in the repository; pass --dataset DIR)"
        raise DataError(f"{folder}: dataset folder not found{hint}")
    for name in ("train.csv", "test.csv"):
        if not (folder / name).is_file():
            raise DataError(f"{folder / name}: missing (a demo dataset is a folder with train.csv, test.csv)")
    return folder


def prepare_split(src: Path, dst: Path, n: int | None, seed: int) -> list[Row]:
    """Sample `n` rows (all when None) of a text,label file into dst (id,text,label); returns the rows."""
    records = read_records(src, text_col="text", label_col="label", require_label=True)
    rows = [(r.id, r.text, str(r.label)) for r in records]
    if n is not None and n < len(rows):
        picked = sorted(random.Random(seed).sample(range(len(rows)), n))
        rows = [rows[i] for i in picked]
    write_csv(dst, [("id", "text", "label"), *rows])
    return rows


def label_stage(train_rows: list[Row], test_rows: list[Row], out: Path, config: DemoConfig, threads: int,
                log: StageLog) -> None:
    """Label train and test items in one LLM run (the label store resumes; finished items are skipped).

    Writes out/labels/all.jsonl (the store), then train.jsonl and test.jsonl (rewritten only on a change).
    """
    from llm2edge.hub.label.runner import LabelConfig, label_file

    items = out / "data" / "label_items.csv"
    write_csv(items, [("id", "text"), *((f"train:{i}", t) for i, t, _ in train_rows),
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
        write_if_changed(out / "labels" / f"{split}.jsonl", "\n".join(lines) + "\n")
    if summary.labeled == 0 and summary.failed == 0 and summary.skipped == n:
        log.done(f"{n} items already labeled", reused=True)
    else:
        log.done(f"{summary.labeled} labeled, {summary.skipped} reused, {summary.failed} failed, "
                 f"{summary.items_per_s:.2f} items/s")


def curate_stage(labels: Path, out: Path, config: DemoConfig, threads: int, log: StageLog
                 ) -> tuple[Path, dict[str, Any]]:
    """cleanlab on the LLM labels (drop or flag likely errors); the labels file to train on."""
    log.start("curate", f"curating the LLM labels (cleanlab, {config.curate})")
    if config.curate == "none":
        log.done("skipped (--curate none)")
        return labels, {"curation": "none"}
    key = digest({"labels": file_digest(labels), "action": config.curate, "seed": config.seed})
    curated = out / "labels.jsonl"
    if stamp_ok(out, key) and curated.is_file():
        info = json.loads((out / STAMP).read_text(encoding="utf-8"))
        log.done(f"{info.get('note', '')}", reused=True)
        return curated, info
    from llm2edge.hub.curate.confident import CurateConfig, curate
    from llm2edge.hub.curate.oof import CrossvalConfig

    crossval = CrossvalConfig(threads=threads, seed=config.seed, folds=5, progress=config.progress)
    try:
        result = curate(CurateConfig(labels=labels, out=out, action=config.curate, crossval=crossval))
    except (Llm2EdgeError, ValueError) as exc:  # e.g. the LLM gave one label to everything
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.done(f"curation skipped: {first}")
        return labels, {"curation": f"skipped: {first}"}
    verb = "dropped" if config.curate == "drop" else "flagged"
    note = f"{verb} {result.n_flagged} of {result.n_rows} labels"
    write_stamp(out, key, note=note, n_rows=result.n_rows, n_flagged=result.n_flagged, action=config.curate)
    log.done(note)
    return curated, {"curation": note, "n_rows": result.n_rows, "n_flagged": result.n_flagged}


def train_stage(data: Path, out: Path, names: list[str], config: DemoConfig, threads: int, epochs: int,
                log: StageLog) -> None:
    """Fine-tune the embedded MiniLM on the (curated) LLM labels; reused when the inputs are unchanged."""
    freeze = config.quick
    settings = {"data": file_digest(data), "epochs": epochs, "max_length": config.max_length, "labels": names,
                "seed": config.seed, "freeze": freeze, "class_weight": config.class_weight, "lr": config.lr}
    if config.train:  # only when set: the stamps of runs made before `train` still match
        settings["train"] = config.train
    key = digest(settings)
    how = "head only, frozen encoder" if freeze else f"{epochs} epoch(s), max_length {config.max_length}"
    how += f", lr {config.lr:g}, class weights {config.class_weight}"
    log.start("train", f"training the MiniLM-L6 student on the LLM labels ({how})")
    if stamp_ok(out, key) and (out / "model.safetensors").is_file():
        log.done("inputs unchanged", reused=True)
        return
    from llm2edge.hub.train import train

    if out.exists():
        shutil.rmtree(out)
    result = train(config.train_config(data=data, out=out, epochs=epochs, threads=threads, labels=names,
                                       freeze_encoder=freeze, resume=False))
    write_stamp(out, key, **settings, seconds=round(result.seconds, 1))
    meta = json.loads((out / "train_meta.json").read_text(encoding="utf-8"))
    run = (f"; {meta['epochs_run']} epochs run (train's min steps), kept epoch {meta.get('kept_epoch')}"
           if meta.get("epochs_run", epochs) != epochs else "")
    log.done(f"{result.examples_per_second:.1f} examples/s{run}")


def export_stage(model: Path, out: Path, config: DemoConfig, threads: int, log: StageLog) -> None:
    """Export the student to an int8 ONNX bundle; reused when the model is unchanged."""
    model_key = json.loads((model / STAMP).read_text(encoding="utf-8"))["key"]
    key = digest({"model": model_key, "quantize": "int8"})
    log.start("export", "exporting the int8 ONNX bundle (validated against torch)")
    if stamp_ok(out.parent, key, EXPORT_STAMP) and (out / "manifest.json").is_file():
        log.done("model unchanged", reused=True)
        return
    from llm2edge.export import ExportConfig, export_bundle

    if out.exists():
        shutil.rmtree(out)
    result = export_bundle(ExportConfig(model=model, out=out, quantize="int8", threads=threads,
                                        verbose=config.progress))
    write_stamp(out.parent, key, EXPORT_STAMP, quantization=result.quantization)
    agree = result.validation.get("agreement_int8")
    log.done(result.quantization + (f", int8 agrees with torch on {agree:.1%}" if agree is not None else ""))


def classify_stage(bundle: Path, rows: list[Row], out: Path, threads: int, log: StageLog
                   ) -> tuple[Classifier, list[str], np.ndarray]:
    """Classify the test rows with the edge runtime (`threads` threads); write out/predictions.csv.

    Returns (the Classifier, the predicted labels, the probabilities).
    """
    log.start("classify", f"classifying the {len(rows)} test items with the edge runtime")
    clf = Classifier.load(bundle, threads=threads)
    t = time.perf_counter()
    proba = clf.predict_proba([text for _, text, _ in rows])
    seconds = time.perf_counter() - t
    pred = [clf.labels[i] for i in proba.argmax(axis=1)]
    with (out / "predictions.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label", "gold", *(f"p_{name}" for name in clf.labels)])
        for (rid, _, gold), label, p in zip(rows, pred, proba):
            writer.writerow([rid, label, gold, *(f"{x:.6f}" for x in p)])
    log.done(f"{len(rows) / seconds:,.0f} items/s in one call, {threads} thread(s)")
    return clf, pred, proba


def bench_stage(bundle: Path, config: DemoConfig, budget: float, threads: int, log: StageLog
                ) -> dict[str, Any]:
    """Per-item latency (`threads` threads each, batch 1) of the edge bundle and of the LLM's scoring."""
    log.start("bench", f"timing edge vs LLM per item ({threads} thread(s) each, batch 1, own process each)")
    texts = sample_texts(bundle.parent / "data" / "test.csv", n=64, seed=config.seed)
    out: dict[str, Any] = {}
    specs = [SystemSpec(name="edge int8 b1", kind="edge", path=str(bundle), threads=threads),
             SystemSpec(name="LLM scoring b1", kind="llm-score", task=config.task, threads=threads)]
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


def dir_mb(folder: Path) -> float:
    """Total size of the files under `folder`, in MB."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
