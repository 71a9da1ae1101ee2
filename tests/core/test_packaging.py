"""Packaging: every package folder is listed in pyproject.toml and lands in the wheel with py.typed."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="needs Python 3.11+ to read pyproject.toml")

ROOTS = {"llm2edge": "src/llm2edge", "llm2edge.edge": "edge", "llm2edge.export": "export",
         "llm2edge.hub": "hub"}


def _setuptools_config(repo: Path) -> dict:
    return tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _package_folders(repo: Path) -> dict[str, Path]:
    """Package name -> folder, for every folder with an __init__.py under the mapped roots."""
    found = {}
    for name, root in ROOTS.items():
        for init in (repo / root).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(repo / root).parts
            found[".".join((name, *rel))] = init.parent
    return found


def test_package_dir_maps_the_top_level_folders(repo):
    assert _setuptools_config(repo)["package-dir"] == ROOTS


def test_every_package_folder_is_listed(repo):
    listed = set(_setuptools_config(repo)["packages"])
    found = _package_folders(repo)
    missing = sorted(set(found) - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    stale = sorted(listed - set(found))
    assert not stale, f"listed in pyproject.toml but no folder with __init__.py: {stale}"


def test_wheel_contains_every_module_and_py_typed(repo, tmp_path):
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("building the wheel offline (no build isolation) needs setuptools in this environment")
    src = tmp_path / "src-copy"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for root in ROOTS.values():
        shutil.copytree(repo / root, src / root, ignore=ignore)
    shutil.copy(repo / "pyproject.toml", src / "pyproject.toml")
    (src / "README.md").write_text("readme", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                           "--no-index", str(src), "-w", str(tmp_path / "dist")],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # an SPDX license string (issue 24): the TOML-table form printed a 20-line deprecation banner per install
    assert "project.license" not in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    (wheel,) = (tmp_path / "dist").glob("llm2edge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    assert "License-Expression: Apache-2.0" in metadata.decode().splitlines()
    expected = set()
    for package, folder in _package_folders(src).items():
        prefix = package.replace(".", "/")
        expected |= {f"{prefix}/{p.name}" for p in folder.glob("*.py")}
    assert not sorted(expected - names), "modules missing from the wheel"
    assert "llm2edge/py.typed" in names  # PEP 561: covers every subpackage (edge, export, hub)
    assert {"llm2edge/edge/classifier.py", "llm2edge/edge/bundle.py", "llm2edge/cli/predict.py"} <= names
    assert not [n for n in names if n.split("/")[0] in ("edge", "export", "hub", "src")], "top-level leak"
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "llm2edge = llm2edge.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


@pytest.mark.slow
def test_base_install_is_the_runtime_libraries_and_no_more(repo, tmp_path):
    """`pip install llm2edge` in a fresh venv (du) is within 3 MB of onnxruntime + numpy + tokenizers alone,
    and holds no CLI framework (bench/footprint.py; numbers in bench/RESULTS.md)."""
    spec = importlib.util.spec_from_file_location("footprint", repo / "bench" / "footprint.py")
    footprint = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(footprint)
    result = footprint.measure(tmp_path)  # pip needs the package index (as scripts/setup.sh does)
    base = result["base"]["packages"]
    assert not {"typer", "rich", "pydantic", "pygments", "shellingham", "torch"} & set(base), sorted(base)
    assert result["overhead_mb"] <= 3, result
