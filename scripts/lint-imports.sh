#!/usr/bin/env bash
# Check the import contracts in pyproject.toml ([tool.importlinter]: the layers and "the edge imports no
# torch") with import-linter, on the package as it is installed.
#
# Why a script: pyproject maps the repo's top-level edge/, hub/ and export/ folders into llm2edge
# (package-dir), and import-linter walks one folder per package, so in the editable install plain
# `lint-imports` would see src/llm2edge only. This assembles the installed layout from symlinks in a
# temporary folder, read from the same package-dir table, and lints that.
# Usage: scripts/lint-imports.sh [lint-imports options, e.g. --verbose]
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
view=$(mktemp -d)
trap 'rm -rf "$view"' EXIT
.venv/bin/python - "$root" "$view" <<'EOF'
import sys
import tomllib
from pathlib import Path

root, view = Path(sys.argv[1]), Path(sys.argv[2])
package_dir = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
# Shortest package names first, so each parent folder exists before its mapped children.
for package, folder in sorted(package_dir.items(), key=lambda item: item[0].count(".")):
    target = view.joinpath(*package.split("."))
    if package.count(".") == 0:
        target.mkdir()
        for entry in (root / folder).iterdir():
            if entry.name != "__pycache__":
                (target / entry.name).symlink_to(entry)
    else:
        target.symlink_to(root / folder)
EOF
PYTHONPATH="$view" .venv/bin/lint-imports --no-cache "$@"
