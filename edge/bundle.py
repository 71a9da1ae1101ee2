"""The edge bundle on disk: write its manifest (export calls this) and read + verify it (the edge calls this).

A bundle is a folder in Hugging Face ONNX layout (`model.onnx`, `tokenizer.json`, `config.json`, ...) plus
`manifest.json`: `{schema, labels, max_length, files: {name: sha256}, source_model, quantization,
validation, versions, created}`. Every file in the folder except the manifest is listed with its checksum.

What `read_bundle` covers, since the manifest cannot hold its own checksum:
- the folder holds exactly the listed files plus manifest.json: regular files only, no symbolic links (to
  files or folders), no unlisted file (such as `model.onnx.data`, which onnxruntime would load as external
  weights), every listed file present with its SHA-256;
- the manifest's own fields are checked against the files: `labels` against config.json's id2label,
  `schema`, `student`, `quantization` and `calibration` against the known values; `max_length` against the
  model itself when `Classifier.load` runs one input of max_length tokens (more positions than the model's
  position embeddings fail there, before any output), and `quantization` against the model's operators.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from llm2edge.errors import BundleError
from llm2edge.hashing import digest, sha256_file
from llm2edge.labelsets import thresholds_array

#: The manifest format version a bundle declares (`schema`); the runtime refuses others.
MANIFEST_SCHEMA = 1
#: The schema of a multi-label bundle: a runtime that predates label sets reads only schema 1 and refuses it,
#: where it would otherwise give softmax single labels from sigmoid logits (a silent wrong answer).
MULTI_LABEL_SCHEMA = 2
#: The bundle's manifest file: labels, max_length, file checksums, validation, versions.
MANIFEST_NAME = "manifest.json"
#: Files every bundle must hold (and list in its manifest).
REQUIRED_FILES = ("model.onnx", "tokenizer.json", "config.json")
QUANTIZATIONS = ("int8", "none")
#: Kinds of student a bundle holds (`student` in the manifest; bundles without the field are transformers).
STUDENTS = ("transformer", "static")
#: Files `llm2edge calibrate` writes into a bundle (the curve and its plot): they change no prediction.
CALIBRATION_FILES = ("calibration.csv", "calibration.png")
#: Hugging Face model types whose config's max_position_embeddings bounds the tokens per text (learned
#: absolute positions); other types are checked with one forward pass at load.
ABSOLUTE_POSITION_TYPES = frozenset({"bert", "distilbert", "electra", "albert", "mobilebert", "roberta",
                                     "xlm-roberta", "camembert", "mpnet"})
#: Of those, the ones whose positions are offset by pad_token_id + 1 (e.g. RoBERTa's 514 -> 512 tokens).
OFFSET_POSITION_TYPES = frozenset({"roberta", "xlm-roberta", "camembert", "mpnet"})

@dataclass(frozen=True)
class BundleInfo:
    """A verified bundle: where it is and what its manifest says."""

    path: Path
    labels: list[str]
    max_length: int
    quantization: str
    source_model: str
    validation: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    created: str = ""
    #: "transformer" (fine-tuned encoder) or "static" (token-embedding table); see STUDENTS.
    student: str = "transformer"
    #: What `llm2edge calibrate` wrote: threshold (None when no threshold met the target), target, curve...
    calibration: dict[str, Any] = field(default_factory=dict)
    #: Tokens the model's position embeddings take, from config.json (`model_positions`); None: not stated.
    positions: int | None = None
    #: A multi-label bundle (manifest `multi_label: true`): independent sigmoid probabilities, and label l
    #: applies when p_l >= thresholds[l] (llm2edge.labelsets).
    multi_label: bool = False
    #: Per-label decision thresholds of a multi-label bundle, for every label (empty when single-label).
    thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def threshold_array(self) -> np.ndarray:
        """The multi-label thresholds in `labels` order (float64)."""
        return thresholds_array(self.thresholds, self.labels)

    @property
    def defer_threshold(self) -> float | None:
        """The calibrated top-probability threshold below which predictions are deferred, or None."""
        value = self.calibration.get("threshold")
        return None if value is None else float(value)

    @property
    def checksum(self) -> str:
        """The SHA-256 of what decides the bundle's predictions: the checksums of its files, except the
        calibration curve and plot (a recalibrated bundle predicts the same; its threshold is read apart)."""
        decisive = sorted((name, sha) for name, sha in self.files.items() if name not in CALIBRATION_FILES)
        if self.multi_label:  # the thresholds decide a multi-label bundle's label sets too
            decisive.append(("thresholds", json.dumps([self.thresholds[n] for n in self.labels])))
        return digest(decisive, length=64)

    @property
    def model_path(self) -> Path:
        """The ONNX model file."""
        return self.path / "model.onnx"

    @property
    def source_folder(self) -> Path | None:
        """The trained model folder, where it can be found: a folder named `source_model` next to the bundle
        (the usual `export -m model -o bundle` layout; manifests store the name, never this machine's path),
        or an older manifest's absolute path; None when neither exists here."""
        if not self.source_model:
            return None
        name = Path(self.source_model)
        folder = name if name.is_absolute() else self.path.parent / name
        return folder if folder.is_dir() else None

    @property
    def tokenizer_path(self) -> Path:
        """The tokenizers-library tokenizer file."""
        return self.path / "tokenizer.json"


def _bundle_files(folder: Path) -> list[str]:
    """Every file under `folder` except the manifest, as sorted POSIX-style relative names; BundleError for a
    symbolic link (to a file or a folder) or anything that is not a regular file or folder.

    A bundle is self-contained: what is checked is what is loaded, so nothing in it may point elsewhere.
    """
    names = []
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            if path.is_symlink():
                raise BundleError(f"{path}: is a symbolic link; a bundle holds only its own regular files "
                                  "(copy the file in, or re-export)")
            if name in files:
                if not path.is_file():
                    raise BundleError(f"{path}: not a regular file")
                rel = path.relative_to(folder).as_posix()
                if rel != MANIFEST_NAME:
                    names.append(rel)
    return sorted(names)


def _read_config(folder: Path) -> dict[str, Any]:
    """config.json of a bundle folder as a dict (BundleError naming the file when unreadable)."""
    cfg_path = folder / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{cfg_path}: cannot read ({exc})") from None
    return cfg if isinstance(cfg, dict) else {}


def model_positions(config: Mapping[str, Any]) -> int | None:
    """How many tokens the model's learned absolute position embeddings take, from a Hugging Face config;
    None when the config does not say it plainly (another position scheme, a static student, no field):
    then only a forward pass can tell (`Classifier.load` runs one)."""
    model_type = config.get("model_type")
    size = config.get("max_position_embeddings")
    if model_type not in ABSOLUTE_POSITION_TYPES or not isinstance(size, int) or isinstance(size, bool):
        return None
    if model_type in OFFSET_POSITION_TYPES:  # positions start after the padding index (fairseq layout)
        pad = config.get("pad_token_id", 1)
        size -= (pad if isinstance(pad, int) else 1) + 1
    return size if size > 0 else None


def _check_positions(config: Mapping[str, Any], max_length: int, manifest: Path) -> int | None:
    """`model_positions(config)`, after checking max_length fits them (BundleError naming the manifest)."""
    positions = model_positions(config)
    if positions is not None and max_length > positions:
        raise BundleError(f"{manifest}: max_length {max_length} does not fit the model "
                          f"({manifest.with_name('config.json')}: {positions} positions)")
    return positions


def labels_from_config(config: object, source: Path, error: type[Exception] = BundleError) -> list[str]:
    """The labels of a Hugging Face config's id2label in id order; `error` names `source` if malformed."""
    id2label = config.get("id2label") if isinstance(config, dict) else None
    if not isinstance(id2label, dict) or not id2label:
        raise error(f"{source}: no id2label mapping")
    try:
        by_id = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        raise error(f"{source}: id2label keys must be integers") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise error(f"{source}: id2label ids must be 0..{len(by_id) - 1}")
    return [by_id[i] for i in range(len(by_id))]


def _check_labels(labels: object, where: str) -> list[str]:
    """A non-empty list of distinct, non-empty label strings, or a BundleError."""
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise BundleError(f"{where}: 'labels' must be a non-empty list of label names")
    if len(set(labels)) != len(labels):
        raise BundleError(f"{where}: 'labels' has duplicates")
    return list(labels)


def write_manifest(
    path: str | Path,
    *,
    labels: Sequence[str],
    max_length: int,
    source_model: str,
    quantization: str,
    validation: Mapping[str, Any] | None = None,
    versions: Mapping[str, Any] | None = None,
    student: str = "transformer",
    calibration: Mapping[str, Any] | None = None,
    multi_label: bool = False,
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Hash every file in the bundle folder, write manifest.json, and return the manifest dict.

    `calibration` (from `llm2edge calibrate`) is written only when given. `multi_label` writes
    `multi_label: true` and `thresholds` for every label (`thresholds` given, LABEL_THRESHOLD otherwise).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"{folder}: bundle folder not found")
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            raise BundleError(f"{folder / name}: required bundle file is missing")
    names = _check_labels(list(labels), str(folder / MANIFEST_NAME))
    config = _read_config(folder)
    config_labels = labels_from_config(config, folder / "config.json")
    if config_labels != names:
        raise BundleError(f"{folder / 'config.json'}: id2label {config_labels} does not match labels {names}")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
        raise BundleError(f"{folder / MANIFEST_NAME}: max_length must be an integer >= 2, got {max_length!r}")
    _check_positions(config, max_length, folder / MANIFEST_NAME)
    if quantization not in QUANTIZATIONS:
        raise BundleError(f"{folder / MANIFEST_NAME}: quantization must be one of {QUANTIZATIONS}")
    if student not in STUDENTS:
        raise BundleError(f"{folder / MANIFEST_NAME}: student must be one of {STUDENTS}, got {student!r}")
    if calibration is not None:
        _check_calibration(dict(calibration), str(folder / MANIFEST_NAME))
    if thresholds is not None and not multi_label:
        raise BundleError(f"{folder / MANIFEST_NAME}: thresholds are for a multi-label bundle only")
    if multi_label:
        given = _check_thresholds(dict(thresholds or {}), names, str(folder / MANIFEST_NAME))
        full = dict(zip(names, thresholds_array(given, names).tolist()))
    from llm2edge import __version__

    manifest: dict[str, Any] = {
        "schema": MULTI_LABEL_SCHEMA if multi_label else MANIFEST_SCHEMA,
        "labels": names,
        "max_length": max_length,
        "files": {name: sha256_file(folder / name) for name in _bundle_files(folder)},
        "source_model": str(source_model),
        "quantization": quantization,
        "student": student,
        "validation": dict(validation or {}),
        "versions": {"llm2edge": __version__, **dict(versions or {})},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if multi_label:
        manifest["multi_label"] = True
        manifest["thresholds"] = full
    if calibration is not None:
        manifest["calibration"] = dict(calibration)
    tmp = folder / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(folder / MANIFEST_NAME)
    return manifest


def _check_calibration(calibration: object, where: str) -> dict[str, Any]:
    """A calibration block whose threshold is None or a probability in [0, 1], or a BundleError."""
    if not isinstance(calibration, dict):
        raise BundleError(f"{where}: 'calibration' must be an object")
    threshold = calibration.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                  or not 0 <= threshold <= 1):
        raise BundleError(f"{where}: calibration threshold must be a probability in [0, 1], "
                          f"got {threshold!r}")
    return calibration


def _check_thresholds(thresholds: object, labels: Sequence[str], where: str) -> dict[str, float]:
    """A {label: t} block naming only known labels, each t a probability in [0, 1], or a BundleError."""
    if not isinstance(thresholds, dict):
        raise BundleError(f"{where}: 'thresholds' must map label names to probabilities")
    unknown = [name for name in thresholds if name not in labels]
    if unknown:
        raise BundleError(f"{where}: thresholds name unknown label '{unknown[0]}' "
                          f"(labels: {', '.join(labels)})")
    for name, value in thresholds.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise BundleError(f"{where}: threshold of '{name}' must be a probability in [0, 1], "
                              f"got {value!r}")
    return {str(k): float(v) for k, v in thresholds.items()}


def _multi_label(manifest: Mapping[str, Any], labels: list[str], where: str) -> tuple[bool, dict[str, float]]:
    """The manifest's multi_label flag and its thresholds for every label (LABEL_THRESHOLD where not
    given); a manifest without the flag is single-label and may not carry thresholds. The flag and the
    schema go together (MULTI_LABEL_SCHEMA for a multi-label bundle)."""
    flag = manifest.get("multi_label", False)
    if not isinstance(flag, bool):
        raise BundleError(f"{where}: 'multi_label' must be true or false, got {flag!r}")
    if not flag and manifest.get("thresholds") is not None:
        raise BundleError(f"{where}: 'thresholds' given, but the bundle is not multi_label")
    schema = manifest.get("schema")
    if flag != (schema == MULTI_LABEL_SCHEMA):
        kind = "multi" if schema == MULTI_LABEL_SCHEMA else "single"
        raise BundleError(f"{where}: schema {schema} is for {kind}-label bundles, but multi_label is "
                          f"{str(flag).lower()} (re-export the bundle)")
    if not flag:
        return False, {}
    given = _check_thresholds(manifest.get("thresholds") or {}, labels, where)
    return True, dict(zip(labels, thresholds_array(given, labels).tolist()))


def _safe_name(name: object, where: str) -> str:
    """A listed file name that stays inside the bundle folder, or a BundleError."""
    if not isinstance(name, str) or not name:
        raise BundleError(f"{where}: bad file name {name!r} in 'files'")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name:
        raise BundleError(f"{where}: file name '{name}' points outside the bundle")
    return name


def read_bundle(path: str | Path, *, verify: bool = True) -> BundleInfo:
    """Read a bundle's manifest and (by default) verify every listed file's presence and SHA-256."""
    folder = Path(path)
    if not folder.is_dir():
        raise BundleError(f"{folder}: bundle folder not found")
    mpath = folder / MANIFEST_NAME
    present = _bundle_files(folder)  # no links, nothing but regular files (the manifest included)
    if not mpath.is_file():
        raise BundleError(f"{mpath}: manifest is missing (not an llm2edge bundle?)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{mpath}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise BundleError(f"{mpath}: expected a JSON object")
    schema = manifest.get("schema")
    if schema not in (MANIFEST_SCHEMA, MULTI_LABEL_SCHEMA) or isinstance(schema, bool):
        raise BundleError(f"{mpath}: unknown manifest schema {schema!r} (this llm2edge reads schemas "
                          f"{MANIFEST_SCHEMA} and {MULTI_LABEL_SCHEMA}; upgrade llm2edge or re-export the "
                          "bundle)")
    labels = _check_labels(manifest.get("labels"), str(mpath))
    max_length = manifest.get("max_length")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
        raise BundleError(f"{mpath}: 'max_length' must be an integer >= 2, got {max_length!r}")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BundleError(f"{mpath}: 'files' must map file names to sha256 checksums")
    for name in REQUIRED_FILES:
        if name not in files:
            raise BundleError(f"{mpath}: 'files' does not list {name}")
    unlisted = [name for name in present if name not in files]
    if unlisted:  # e.g. model.onnx.data: onnxruntime would load external weights no checksum covers
        raise BundleError(f"{folder / unlisted[0]}: not listed in the manifest ({len(unlisted)} unlisted "
                          "file(s)); a bundle holds only the files its manifest lists: remove or re-export")
    for name, expected in files.items():
        name = _safe_name(name, str(mpath))
        fpath = folder / name
        if not fpath.is_file():
            raise BundleError(f"{fpath}: listed in the manifest but missing")
        if verify and sha256_file(fpath) != expected:
            raise BundleError(f"{fpath}: checksum mismatch (file changed or corrupt since export)")
    config = _read_config(folder)
    config_labels = labels_from_config(config, folder / "config.json")
    if config_labels != labels:
        raise BundleError(f"{folder / 'config.json'}: id2label {config_labels} does not match "
                          f"the manifest's labels {labels}")
    positions = _check_positions(config, max_length, mpath)
    validation = manifest.get("validation") or {}
    versions = manifest.get("versions") or {}
    quantization = manifest.get("quantization", "none")
    if quantization not in QUANTIZATIONS:
        raise BundleError(f"{mpath}: unknown quantization {quantization!r} (known: {QUANTIZATIONS})")
    student = manifest.get("student", "transformer")
    if student not in STUDENTS:
        raise BundleError(f"{mpath}: unknown student {student!r} (this llm2edge knows {', '.join(STUDENTS)})")
    calibration = _check_calibration(manifest.get("calibration") or {}, str(mpath))
    multi_label, thresholds = _multi_label(manifest, labels, str(mpath))
    return BundleInfo(
        path=folder,
        labels=labels,
        max_length=max_length,
        quantization=quantization,
        source_model=str(manifest.get("source_model", "")),
        validation=dict(validation) if isinstance(validation, dict) else {},
        versions=dict(versions) if isinstance(versions, dict) else {},
        files={str(k): str(v) for k, v in files.items()},
        created=str(manifest.get("created", "")),
        student=student,
        calibration=calibration,
        positions=positions,
        multi_label=multi_label,
        thresholds=thresholds,
    )
