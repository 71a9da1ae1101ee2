"""Reading replies: label distributions from logprobs along the generated path, and matched answers.

Real token lists from the llama.cpp server are checked in test_openai_backend.py; these pin the rules.
"""

from __future__ import annotations

import math

import pytest

from llm2edge.hub.label.answers import Token, answer_offset, label_logprobs, match_answer, token_at
from llm2edge.hub.label.backend import LabelSpace

MRF = LabelSpace(names=("misinfo", "real"))
TOPICS = LabelSpace(names=("sports", "politics", "science"))  # SmolLM2: s+ports, pol+itics


def test_split_label_merged_along_generated_path() -> None:
    toks = [Token(" s", -0.2, {" s": -0.2, " Politics": -2.0, "Science": -3.0, "The": -1.0}),
            Token("ports", -0.1, {"ports": -0.1, "port": -2.5})]
    lps = label_logprobs(toks, 0, TOPICS)
    assert lps is not None
    assert lps["sports"] == pytest.approx(-0.3)  # " s" + "ports" (case, spaces stripped)
    assert lps["politics"] == pytest.approx(-2.0) and lps["science"] == pytest.approx(-3.0)


def test_variants_add_and_missing_labels_get_the_floor() -> None:
    toks = [Token("real", -0.5, {"real": -0.5, "Real": -1.5, '"real': -3.0, "fake": -4.0})]
    lps = label_logprobs(toks, 0, MRF)
    assert lps is not None
    assert lps["real"] == pytest.approx(math.log(math.exp(-0.5) + math.exp(-1.5) + math.exp(-3.0)))
    assert lps["misinfo"] == pytest.approx(-4.0)  # absent: lowest logprob shown (an upper bound)
    assert label_logprobs([Token("The", -0.1, {"The": -0.1, "A": -2.0})], 0, MRF) is None


def test_match_answer_forms() -> None:
    assert match_answer('{"label": "misinfo"}', MRF) == "misinfo"
    assert match_answer("Reasoning...\nAnswer: Real.", MRF) == "real"
    assert match_answer(" **MISINFO**", MRF) == "misinfo"
    assert match_answer("I cannot tell", MRF) is None


def test_cot_answer_is_found_after_the_last_answer_cue() -> None:
    content = "Answer: maybe real... let me think.\nAnswer: misinfo"
    offset = answer_offset(content, cot=True)
    assert offset is not None and content[offset:] == "misinfo"
    toks = [Token(t, -0.1, {}) for t in ("Answer: maybe real... let me think.\n", "Answer:", " mis", "info")]
    assert token_at(toks, offset) == 2
    assert answer_offset("no cue here", cot=True) is None
    assert answer_offset('{"label": "real"}', cot=False) == '{"label": "real"}'.index("real")
