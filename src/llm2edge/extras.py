"""Optional extras: the one check that an extra is installed, shared by gated subpackages and the CLI.

What each extra installs is read from llm2edge's own installed metadata (the `Requires-Dist` lines with an
`extra == "hub"` marker, i.e. pyproject's optional-dependencies), never from a table kept here. A gated
subpackage runs the check when it is imported, model2vec style::

    from llm2edge.extras import require

    require("hub")  # MissingExtraError: ... pip install 'llm2edge[hub]'

and a CLI command runs the same check before it imports its stage, so a library user and a CLI user get the
same one-line hint.
"""

from __future__ import annotations

import importlib.metadata
from functools import cache

from packaging.requirements import Requirement

from llm2edge.errors import MissingExtraError

#: The distribution whose metadata lists the extras.
DISTRIBUTION = "llm2edge"


@cache
def extra_packages(extra: str) -> tuple[str, ...]:
    """The distributions `extra` installs on this Python (markers such as `python_version` applied).

    Empty when llm2edge has no installed metadata (run from a bare source tree): there is nothing to check
    against, and a missing package then surfaces as Python's own ModuleNotFoundError.
    """
    try:
        metadata = importlib.metadata.metadata(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return ()
    known = metadata.get_all("Provides-Extra") or []
    if extra not in known:
        raise ValueError(f"unknown extra '{extra}' (llm2edge provides: {', '.join(known)})")
    packages = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if requirement.marker is not None and requirement.marker.evaluate({"extra": extra}) and (
            not requirement.marker.evaluate({"extra": ""})  # skip base dependencies with a marker
        ):
            packages.append(requirement.name)
    return tuple(dict.fromkeys(packages))


def _installed(package: str) -> bool:
    """True if the distribution `package` is installed (found through its metadata, not imported)."""
    try:
        importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@cache
def missing(extra: str) -> str | None:
    """The first distribution of `extra` that is not installed, or None when the extra is complete."""
    return next((package for package in extra_packages(extra) if not _installed(package)), None)


def require(extra: str) -> None:
    """Raise MissingExtraError with the pip command if any distribution of `extra` is not installed."""
    package = missing(extra)
    if package is not None:
        raise MissingExtraError(extra, package)
