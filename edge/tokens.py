"""Tokenizing for the edge: a long text is cut at a word boundary before it is tokenized, when that provably
gives the same tokens.

A model reads at most max_length tokens, but a tokenizer tokenizes the whole text before it truncates: a
4,000-character post costs as much to tokenize as 40 short ones. For tokenizers that split text into words at
whitespace and tokenize every word on its own (BERT's WordPiece: BertPreTokenizer or Whitespace[Split]
pre-tokenizer, a per-character normalizer, a WordPiece or WordLevel model), the tokens of a text's first
words do not depend on what follows them. So a text with more than `max_length + 1` space-separated words is
cut at the space after its first `max_length + 1` words (every non-empty word gives at least one token), and
the cut text is tokenized. If the cut text was truncated, its tokens are the first tokens of the whole text:
the same ids, masks and type ids, and the same "truncated" flag. If it was not (words that give no token:
empty runs between two spaces, lone control characters), the whole text is tokenized again. Other
tokenizers (byte-level BPE, Unigram, anything unrecognised) always get the whole text.
Checked against the whole-text encodings on every text of ../shared/data in tests/edge/test_tokens.py.
"""

from __future__ import annotations

from tokenizers import Encoding, Tokenizer

#: Pre-tokenizers that split at whitespace and never look across it.
WORD_PRE_TOKENIZERS = frozenset({"BertPreTokenizer", "Whitespace", "WhitespaceSplit"})
#: Normalizers that work character by character (none joins or moves characters across a space).
WORD_NORMALIZERS = frozenset({"NoneType", "BertNormalizer", "Lowercase", "StripAccents", "NFC", "NFD", "NFKC",
                              "NFKD"})
#: Models that tokenize each pre-token on its own.
WORD_MODELS = frozenset({"WordPiece", "WordLevel"})


def words_kept(tokenizer: Tokenizer, max_length: int) -> int:
    """How many space-separated words of a text are enough to fill max_length tokens with this tokenizer, or
    0 when its tokens of a text's start may depend on the rest (then texts are never cut)."""
    kinds = (type(tokenizer.normalizer).__name__, type(tokenizer.pre_tokenizer).__name__,
             type(tokenizer.model).__name__)
    if kinds[0] in WORD_NORMALIZERS and kinds[1] in WORD_PRE_TOKENIZERS and kinds[2] in WORD_MODELS:
        return max_length + 1
    return 0


def head(text: str, words: int) -> str:
    """`text` up to the space after its first `words` space-separated words (`text` itself if shorter)."""
    parts = text.split(" ", words)
    if len(parts) <= words:
        return text
    return text[: len(text) - len(parts[-1]) - 1]


class TextEncoder:
    """Encodes texts with truncation at max_length, cutting long texts first where that is exact."""

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        tokenizer.no_padding()  # batches are padded per call to their longest item, by the caller
        tokenizer.enable_truncation(max_length=max_length)
        self.tokenizer = tokenizer
        self.words = words_kept(tokenizer, max_length)
        # encode_batch_fast (tokenizers >= 0.21) skips the character offsets, which are never used here
        self._encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)

    def encode(self, texts: list[str]) -> list[Encoding]:
        """The encodings of `texts`, equal to the tokenizer's on the whole texts."""
        if not self.words:
            return self._encode(texts)
        heads = [head(t, self.words) for t in texts]
        encodings = self._encode(heads)
        again = [i for i, (text, cut, enc) in enumerate(zip(texts, heads, encodings))
                 if cut is not text and not enc.overflowing]
        if again:
            for i, enc in zip(again, self._encode([texts[i] for i in again])):
                encodings[i] = enc
        return encodings
