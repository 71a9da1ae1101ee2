"""llm2edge: turn an LLM's labels into a small, fast classifier that runs anywhere.

The top-level import is light on purpose: it pulls in neither the edge runtime nor torch.
"""

from llm2edge.errors import (
    BackendError,
    BundleError,
    BusyError,
    ConfigError,
    DataError,
    EngineError,
    ExportError,
    Interrupted,
    Llm2EdgeError,
    MissingExtraError,
    TaskError,
    TrainError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "BundleError",
    "BusyError",
    "ConfigError",
    "DataError",
    "EngineError",
    "ExportError",
    "Interrupted",
    "Llm2EdgeError",
    "MissingExtraError",
    "TaskError",
    "TrainError",
    "__version__",
]
