"""`run_demo`: the demo's stages in order into one folder, then report.md, report.json, a terminal table."""

from __future__ import annotations

import json
import time
from pathlib import Path

from llm2edge.edge.threads import resolve_threads
from llm2edge.errors import DataError
from llm2edge.metrics import classification_report
from llm2edge.pipeline.demo.config import DemoConfig, DemoResult
from llm2edge.pipeline.demo.report import gaps, llm_labels, llm_report, print_table, render_report
from llm2edge.pipeline.demo.stages import (
    StageLog,
    bench_stage,
    classify_stage,
    curate_stage,
    dir_mb,
    export_stage,
    label_stage,
    prepare_split,
    resolve_dataset,
    train_stage,
)


def run_demo(config: DemoConfig) -> DemoResult:
    """Run (or resume) the whole demo into config.out and write report.md / report.json."""
    from llm2edge.hub.label.task import load_task
    from llm2edge.hub.models import default_llm_gguf

    t0 = time.perf_counter()
    dataset = resolve_dataset(config.dataset)
    task = load_task(config.task)
    names = list(task.label_names)
    n_train, n_test, epochs, budget = config.sizes()
    # Every stage, and both timed systems, run with the same count: --threads, else the CPUs this process
    # may use. On a machine busy with other jobs pass --threads 1 (MEASURED.md: two torch threads on a busy
    # 2-core machine ran 13-26x slower than one).
    threads = resolve_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    log = StageLog(7, config.progress)

    log.start("data", f"preparing {dataset.name}: train {n_train or 'all'}, test {n_test} items")
    train_rows = prepare_split(dataset / "train.csv", out / "data" / "train.csv", n_train, config.seed)
    test_rows = prepare_split(dataset / "test.csv", out / "data" / "test.csv", n_test, config.seed)
    bad = sorted({g for _, _, g in train_rows + test_rows} - set(names))
    if bad:
        raise DataError(f"{dataset}: gold label(s) {', '.join(bad)} are not labels of task '{task.name}' "
                        f"({', '.join(names)}); pass the matching --task")
    log.done(f"{len(train_rows)} train, {len(test_rows)} test")

    label_stage(train_rows, test_rows, out, config, threads, log)
    train_labels, cur = curate_stage(out / "labels" / "train.jsonl", out / "curated", config, threads, log)
    train_stage(train_labels, out / "model", names, config, threads, epochs, log)
    export_stage(out / "model", out / "bundle", config, threads, log)
    clf, pred, _ = classify_stage(out / "bundle", test_rows, out, threads, log)
    bench = bench_stage(out / "bundle", config, budget, threads, log)

    gold = [g for _, _, g in test_rows]
    edge_report = classification_report(gold, pred, names)
    llm_test = llm_report(out / "labels" / "test.jsonl", test_rows, names)
    llm_train = llm_report(out / "labels" / "train.jsonl", train_rows, names)
    majority = max(names, key=lambda n: sum(1 for g in gold if g == n))
    llm_pred = llm_labels(out / "labels" / "test.jsonl", test_rows)
    agreement = sum(a == b for a, b in zip(pred, llm_pred)) / len(pred)
    share = {n: sum(1 for x in llm_pred if x == n) / len(llm_pred) for n in names}
    n_used = sum(1 for line in train_labels.read_text(encoding="utf-8").splitlines() if line.strip())
    res = DemoResult(out=out, report=out / "report.md", llm_test=llm_test, edge_test=edge_report,
                     llm_train=llm_train, llm_ms=bench["LLM scoring b1"].get("per_item_ms"),
                     edge_ms=bench["edge int8 b1"].get("per_item_ms"), bundle_mb=dir_mb(out / "bundle"),
                     seconds=time.perf_counter() - t0, reused=log.reused, stages=log.stages)
    gguf = default_llm_gguf()
    meta = {"dataset_name": dataset.name, "labels": names, "task": task.name, "llm": gguf.stem,
            "llm_mb": gguf.stat().st_size / 1e6, "shots": config.shots, "calibrate": config.calibrate,
            "curation": cur.get("curation", ""), "n_train_used": n_used, "class_weight": config.class_weight,
            "quantization": clf.info.quantization, "threads": threads,
            "bundle": str(out / "bundle"), "predictions": str(out / "predictions.csv"), "majority": majority,
            "majority_acc": sum(1 for g in gold if g == majority) / len(gold),
            "edge_llm_agreement": agreement, "llm_label_share": share}
    res.report.write_text(render_report(res, meta), encoding="utf-8")
    (out / "report.json").write_text(json.dumps({
        "meta": meta, "gaps_points": gaps(res, meta), "seconds": round(res.seconds, 1), "stages": res.stages,
        "reused": res.reused,
        "llm_test": llm_test.to_dict(), "edge_test": edge_report.to_dict(), "llm_train": llm_train.to_dict(),
        "bench": bench, "bundle_mb": res.bundle_mb}, indent=2, default=str) + "\n", encoding="utf-8")
    if config.progress:
        print_table(res, meta)
    return res
