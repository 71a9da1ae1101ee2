"""Footprint: `du` of a fresh virtualenv after `pip install llm2edge` (this checkout), beside the floor.

The floor is a fresh virtualenv with only what the edge runs on: `pip install onnxruntime numpy tokenizers`
(whatever those three pull in themselves, e.g. tokenizers' huggingface_hub). Both venvs start as
`python -m venv` makes them (pip and setuptools included: that is what a user's venv holds), sizes are
`du -sk` of the whole venv, and the biggest packages of each are listed.

    python bench/footprint.py [--json out.json] [--keep DIR]

tests/core/test_packaging.py (slow) checks the base install against the floor and that no CLI framework
(typer, rich, pydantic, pygments) is in it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What the floor venv installs: the edge's three runtime libraries and nothing else.
FLOOR_PACKAGES = ("onnxruntime", "numpy", "tokenizers")


def du_mb(path: Path) -> float:
    """`du -sk` of a folder, in MiB."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.split()[0]) / 1024


def site_packages(venv: Path) -> Path:
    """The venv's site-packages folder."""
    return next((venv / "lib").glob("python3*/site-packages"))


def make_venv(venv: Path, *requirements: str, python: str = sys.executable) -> dict:
    """A fresh venv with `requirements` pip-installed: {mb, packages, biggest: [(name, mb)]}."""
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, "install", "-q", *requirements], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(requirements)} failed: {proc.stderr[-2000:]}")
    listed = subprocess.run([*pip, "list", "--format=json"], capture_output=True, text=True, check=True)
    packages = {p["name"].lower(): p["version"] for p in json.loads(listed.stdout)}
    site = site_packages(venv)
    sizes = sorted(((p.name, du_mb(p)) for p in site.iterdir() if p.is_dir() and not p.name.endswith(
        (".dist-info", "__pycache__"))), key=lambda kv: -kv[1])
    return {"mb": round(du_mb(venv), 1), "packages": packages,
            "biggest": [(name, round(mb, 1)) for name, mb in sizes[:12]]}


def measure(root: Path, python: str = sys.executable) -> dict:
    """{base, floor, overhead_mb}: the base install of this checkout and the three-library floor."""
    base = make_venv(root / "base", str(REPO), python=python)
    floor = make_venv(root / "floor", *FLOOR_PACKAGES, python=python)
    return {"base": base, "floor": floor, "overhead_mb": round(base["mb"] - floor["mb"], 1),
            "python": subprocess.run([python, "--version"], capture_output=True, text=True).stdout.strip()}


def main(argv: list[str] | None = None) -> int:
    """Build both venvs, print their sizes and what is in the base beyond the floor."""
    # bench/jsonout.py is found when this file runs as a script; tests load it by path and use `measure`.
    from jsonout import write_result

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="Build the venvs here and keep them.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="llm2edge-footprint-") as tmp:
        result = measure(args.keep or Path(tmp))
    base, floor = result["base"], result["floor"]
    print(f"base install (pip install llm2edge): {base['mb']:.1f} MB; floor ({' + '.join(FLOOR_PACKAGES)}): "
          f"{floor['mb']:.1f} MB; base - floor = {result['overhead_mb']:+.1f} MB ({result['python']})")
    extra = sorted(set(base["packages"]) - set(floor["packages"]))
    print(f"in the base beyond the floor: {', '.join(extra) or 'nothing'}")
    print("biggest in the base: " + ", ".join(f"{n} {mb:.0f}" for n, mb in base["biggest"]))
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
