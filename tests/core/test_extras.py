"""Extras: what each one installs comes from llm2edge's installed metadata; a gated subpackage and the CLI
raise the same MissingExtraError with the pip command when it is missing."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from llm2edge import extras

tomllib = pytest.importorskip("tomllib", reason="needs Python 3.11+ to read pyproject.toml")

ROOT = Path(__file__).resolve().parents[2]
#: What `pip install torch` puts into site-packages (the package, its two siblings, its metadata).
TORCH_ENTRIES = ("torch", "functorch", "torchgen")
#: Every gated subpackage and the extra it names first.
GATED = {
    "llm2edge.hub.label": "hub",
    "llm2edge.hub.curate": "hub",
    "llm2edge.hub.train": "hub",
    "llm2edge.export": "export",
    "llm2edge.pipeline.demo": "hub",
    "llm2edge.pipeline.experiment": "hub",
}


def pyproject_extra(name: str) -> tuple[str, ...]:
    """The distributions pyproject's optional-dependencies list for `name`, markers applied to this Python."""
    lines = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][name]
    requirements = [Requirement(line) for line in lines]
    return tuple(dict.fromkeys(r.name for r in requirements if r.marker is None or r.marker.evaluate()))


@pytest.mark.parametrize("extra", ["hub", "export"])
def test_extra_packages_are_read_from_the_installed_metadata(extra):
    assert extras.extra_packages(extra) == pyproject_extra(extra)
    assert "torch" in extras.extra_packages(extra)
    assert "onnxruntime" not in extras.extra_packages(extra)  # base dependencies are not part of an extra


def test_complete_extras_pass_and_an_unknown_extra_is_named():
    extras.require("hub")
    extras.require("export")
    assert extras.missing("hub") is None
    with pytest.raises(ValueError, match=r"unknown extra 'hubb' \(llm2edge provides: .*hub"):
        extras.require("hubb")


@pytest.fixture(scope="module")
def site_without_torch(tmp_path_factory) -> Path:
    """A site folder with every package of this virtualenv except torch (symlinks): torch is not installed."""
    site = Path(sysconfig.get_paths()["purelib"])
    view = tmp_path_factory.mktemp("site-without-torch")
    for entry in site.iterdir():
        if entry.name.split("-")[0].lower() not in TORCH_ENTRIES:
            (view / entry.name).symlink_to(entry)
    return view


def run_without_torch(site: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `script` in a Python whose only site folder is `site` (no site-packages, no PYTHONPATH)."""
    prologue = "import site, sys; site.addsitedir(sys.argv[1])\n"
    return subprocess.run([sys.executable, "-I", "-S", "-c", prologue + script, str(site), *args],
                          capture_output=True, text=True, timeout=120)


IMPORT_EACH = """
import importlib.util, json
from llm2edge.errors import MissingExtraError
assert importlib.util.find_spec("torch") is None, "torch is still importable"
import llm2edge, llm2edge.edge, llm2edge.hub, llm2edge.hub.tasks, llm2edge.pipeline  # the base install
out = {}
for name in sys.argv[2:]:
    try:
        __import__(name)
        out[name] = "imported"
    except MissingExtraError as exc:
        out[name] = str(exc)
print(json.dumps(out))
"""


def test_gated_subpackages_name_the_pip_command_without_torch(site_without_torch):
    proc = run_without_torch(site_without_torch, IMPORT_EACH, *GATED)
    assert proc.returncode == 0, proc.stderr
    messages = json.loads(proc.stdout)
    assert messages == {
        name: f"this needs the '{extra}' extra (torch is not installed): pip install 'llm2edge[{extra}]'"
        for name, extra in GATED.items()
    }


def test_cli_and_library_give_the_same_hint(site_without_torch):
    """`llm2edge train` without torch: one line, exit 2, the message `import llm2edge.hub.train` raises."""
    proc = run_without_torch(site_without_torch, "from llm2edge.cli import main\nmain(sys.argv[2:])",
                             "train", "--data", "labels.jsonl", "--out", "model")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ("llm2edge: error: this needs the 'hub' extra (torch is not installed): "
                           "pip install 'llm2edge[hub]'\n")
    help_proc = run_without_torch(site_without_torch, "from llm2edge.cli import main\nmain(['--help'])")
    assert help_proc.returncode == 0, help_proc.stderr
    assert "train" in help_proc.stdout
