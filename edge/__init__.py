"""The edge runtime: onnxruntime + tokenizers + numpy, never torch.

    from llm2edge.edge import Classifier
    clf = Classifier.load("bundle/")
    clf.predict(["some text"])            # -> ["label"]
    clf.predict_proba(["some text"])      # -> float32 array [n, num_labels]

A multi-label bundle (manifest `multi_label: true`): `predict` -> [["label", ...]] (the labels whose sigmoid
probability reaches its threshold), `predict_proba` -> independent per-label probabilities.
"""

from __future__ import annotations

import os

# onnxruntime >= 1.32 writes a persistent device id and a telemetry queue under
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ as soon as it is imported, unless this is set first
# (disable_telemetry_events() does not stop it). Every module of the edge imports onnxruntime after this
# line; a program that imported onnxruntime before llm2edge.edge must set the variable itself.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from llm2edge.edge.bundle import (
    MANIFEST_NAME,
    MANIFEST_SCHEMA,
    BundleInfo,
    read_bundle,
    sha256_file,
    write_manifest,
)
from llm2edge.edge.classifier import Classifier
from llm2edge.edge.session import session_options
from llm2edge.edge.threads import available_cpus, resolve_threads

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_SCHEMA",
    "BundleInfo",
    "Classifier",
    "available_cpus",
    "read_bundle",
    "resolve_threads",
    "session_options",
    "sha256_file",
    "write_manifest",
]
