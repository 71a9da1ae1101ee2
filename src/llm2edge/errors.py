"""One exception class per failure mode, under a common base (the CLI prints them as one line, exit 2)."""

from __future__ import annotations


class Llm2EdgeError(Exception):
    """Base of every error llm2edge raises on purpose."""


class ConfigError(Llm2EdgeError, ValueError):
    """A bad argument or configuration value (library or CLI alike): out of range, not one of the accepted
    choices, or an unknown key of a config file. A ValueError too, for callers that catch those."""


class DataError(Llm2EdgeError):
    """A data file is missing, unreadable, not UTF-8, lacks a column, or holds a bad row."""


class TaskError(Llm2EdgeError):
    """A task file is malformed or a label is not in the task's label set."""


class BundleError(Llm2EdgeError):
    """An edge bundle is missing a file, fails its checksum, or does not match its manifest."""


class BackendError(Llm2EdgeError):
    """An LLM backend failed: the server refused, timed out, or the model could not be loaded."""


class TrainError(Llm2EdgeError):
    """Training could not start or continue (bad arguments, unusable checkpoint)."""


class ExportError(Llm2EdgeError):
    """ONNX export, quantization or validation failed."""


class EngineError(Llm2EdgeError):
    """A cluster engine (Ray, Spark) failed: it cannot be reached, or a worker failed outside llm2edge."""


class BusyError(Llm2EdgeError):
    """An output is locked by another running llm2edge process (the message names its pid)."""


class Interrupted(Llm2EdgeError):
    """The user stopped a run (Ctrl-C, SIGINT): the CLI prints the message as one line and exits 130.

    `rows`: rows the run had written when it stopped (None: not a row-writing step), so a caller that
    knows the file can say how much of it is there and how to continue.
    """

    def __init__(self, message: str = "interrupted", rows: int | None = None) -> None:
        self.rows = rows
        super().__init__(message)


class MissingExtraError(Llm2EdgeError):
    """A subpackage or command needs an optional extra that is not installed.

    `module` names what is missing: a package of the extra (`torch`) or a runtime feature of it.
    """

    def __init__(self, extra: str, module: str) -> None:
        self.extra = extra
        self.module = module
        super().__init__(
            f"this needs the '{extra}' extra ({module} is not installed): pip install 'llm2edge[{extra}]'"
        )
