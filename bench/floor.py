"""The start-up floor: what onnxruntime + tokenizers + numpy alone cost to classify one text.

    python bench/floor.py BUNDLE "some text"      # prints the label

The reference `llm2edge predict --bundle BUNDLE "some text"` is measured against (bench/startup.py): the
same libraries, the same files (model.onnx, tokenizer.json, config.json's id2label), the same truncation
and thread count, and nothing else: no CLI framework, no manifest, no checksums, no llm2edge import.
Threads: LLM2EDGE_FLOOR_THREADS (default 1, what bench/startup.py gives both sides).
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main() -> None:
    """Classify argv[2] with the bundle folder argv[1] and print its label."""
    folder, text = sys.argv[1], sys.argv[2]
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
        id2label = json.load(handle)["id2label"]
    with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as handle:
        max_length = json.load(handle)["max_length"]
    tokenizer = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(os.environ.get("LLM2EDGE_FLOOR_THREADS", "1"))
    session = ort.InferenceSession(os.path.join(folder, "model.onnx"), sess_options=opts,
                                   providers=["CPUExecutionProvider"])
    enc = tokenizer.encode(text)
    arrays = {"input_ids": enc.ids, "attention_mask": enc.attention_mask, "token_type_ids": enc.type_ids}
    feed = {i.name: np.array([arrays[i.name]], dtype=np.int64) for i in session.get_inputs()}
    (logits,) = session.run(None, feed)
    print(id2label[str(int(np.argmax(logits[0])))])


if __name__ == "__main__":
    main()
