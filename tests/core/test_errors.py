"""The error classes: one hierarchy under Llm2EdgeError, every class re-exported at the top level."""

from __future__ import annotations

import pytest

import llm2edge
from llm2edge import errors
from llm2edge.errors import ConfigError, Llm2EdgeError, MissingExtraError


def test_every_error_is_an_llm2edge_error():
    classes = [getattr(errors, n) for n in dir(errors) if n.endswith("Error") and n != "Llm2EdgeError"]
    assert len(classes) >= 7
    for cls in classes:
        assert issubclass(cls, Llm2EdgeError)
        assert getattr(llm2edge, cls.__name__) is cls  # re-exported at the top level


def test_missing_extra_error_message():
    err = MissingExtraError("export", "torch")
    assert (err.extra, err.module) == ("export", "torch")
    assert str(err) == ("this needs the 'export' extra (torch is not installed): "
                        "pip install 'llm2edge[export]'")
    assert "\n" not in str(err)


def test_config_error_is_a_value_error():
    """Bad arguments raise ConfigError: caught as llm2edge's own error or as the builtin ValueError."""
    from llm2edge.checks import at_least, check_max_length, one_of

    for call in (lambda: at_least("epochs", 0), lambda: one_of("quantize", "fp16", ("int8", "none")),
                 lambda: check_max_length(100_000)):
        with pytest.raises(ValueError) as exc:
            call()
        assert isinstance(exc.value, ConfigError) and isinstance(exc.value, Llm2EdgeError)
    with pytest.raises(ConfigError, match=r"^quantize must be one of int8, none, got 'fp16'$"):
        one_of("quantize", "fp16", ("int8", "none"))
