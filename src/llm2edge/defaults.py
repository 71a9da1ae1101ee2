"""Every default value of llm2edge, named once (httpx `_config.py` style).

The library's config dataclasses and function signatures and the CLI's options all read these names, so a
default is typed in one place; `tests/cli/test_defaults.py` fails where a CLI option's default differs
from the library's. Only `None` ("not given: decide at run time") and `False` (a flag that is off) are
written as literals elsewhere. Range checks of these values live in `llm2edge.checks`.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------- shared by stages
#: Column holding the text in every data file (label, train, export validation, predict, bench).
TEXT_COL = "text"
#: Column holding the gold or LLM label (train, export validation, merge-experts' gold file, evaluate).
LABEL_COL = "label"
#: Column that joins predictions with gold labels in `evaluate`.
ID_COL = "id"
#: Multi-label tasks: the separator of a label list in a CSV/Parquet cell or a `--labels`-style string
#: (`joy;surprise`); JSONL files hold a list instead (llm2edge.labelsets).
LABEL_SEP = ";"
#: Multi-label tasks: the decision threshold of a label whose threshold was not tuned.
LABEL_THRESHOLD = 0.5
#: Tokens per text the student reads, everywhere a student encoder runs: train (then train_meta.json and
#: the bundle's manifest), curate's cross-validation embeddings, demo, experiment. 64 covers the shipped
#: tasks' short texts (tweets, headlines, jokes); training cost grows with it (MEASURED.md: len 64).
MAX_LENGTH = 64
#: No max_length may exceed this (a typo guard; the model's own position limit applies on top).
MAX_LENGTH_LIMIT = 32_768
#: The smallest max_length: a BERT-style input needs at least its [CLS] and [SEP] tokens.
MAX_LENGTH_MIN = 2
#: Seed of samples, folds and splits (curate, sample-experts, bench, demo, experiment).
SEED = 0
#: Show progress bars / lines on stderr.
PROGRESS = True

# ------------------------------------------------------------------------------------------------- label
#: Labeling backend: "hf" (in-process Hugging Face model) or "openai" (any OpenAI-compatible server).
LABEL_BACKEND = "hf"
#: Few-shot examples in each prompt.
SHOTS = 0
#: Items per backend call.
LABEL_BATCH_SIZE = 16
#: Output format of `label`: "jsonl", or "csv" to also write a CSV copy.
LABEL_FORMAT = "jsonl"
#: openai backend: requests in flight.
LABEL_CONCURRENCY = 8
#: openai backend: seconds per request.
LABEL_TIMEOUT_S = 60.0
#: openai backend: client retries per request.
LABEL_MAX_RETRIES = 2
#: Extra passes over the items that failed in a run.
LABEL_RETRY_FAILED = 1
#: hf backend: torch dtype ("auto", "float32", "bfloat16", "float16").
LABEL_DTYPE = "auto"
#: hf backend with chain of thought: the longest reasoning, in tokens.
MAX_NEW_TOKENS = 128
#: Answers per item (self-consistency): 1 labels each item once (scores or logprobs); K > 1 asks for K
#: sampled answers and stores their vote shares as `probs` (`prob_source: votes`).
LABEL_SAMPLES = 1
#: Sampling temperature of `--samples` K > 1. At 1.0 the vote shares estimate the model's own label
#: distribution (a constrained one-label answer is drawn from it); lower values sharpen the votes.
LABEL_SAMPLE_TEMPERATURE = 1.0
#: Add-alpha smoothing of vote shares: p(label) = (votes + alpha) / (K + alpha * n_labels). 0.5 is the
#: Jeffreys / Krichevsky-Trofimov prior: a unanimous 5 of 5 gives 0.92 (binary), never a certain 1.0.
LABEL_VOTE_ALPHA = 0.5

# ------------------------------------------------------------------------------------------------ curate
#: Curation method of `curate`.
CURATE_METHOD = "cleanlab"
#: Source of cleanlab's out-of-sample probabilities: "crossval" (student embeddings) or "llm".
CURATE_PROBS = "crossval"
#: What `curate` does with flagged rows: "flag" (add label_issue) or "drop".
CURATE_ACTION = "flag"
#: Cross-validation folds for crossval probabilities.
CURATE_FOLDS = 5
#: cleanlab's find_label_issues filter.
CURATE_FILTER_BY = "prune_by_noise_rate"
#: Class weights of the out-of-fold model (curate --probs crossval, sample-experts --by crossval,
#: soft-labels --from crossval): "none" (the LLM labels' own balance) or "balanced" (each label weighted by
#: the inverse of its share, so a skewed teacher's majority does not outvote its minority answers).
OOF_CLASS_WEIGHT = "none"
#: The choices of OOF_CLASS_WEIGHT.
OOF_CLASS_WEIGHTS = ("none", "balanced")
#: Flagged examples listed in curate's report.
CURATE_TOP = 20
#: Texts per batch when the student encoder embeds texts (curate's crossval features).
EMBED_BATCH_SIZE = 32
#: Share of the items `sample-experts` sends to experts.
EXPERT_FRACTION = 0.1
#: Which items `sample-experts` picks: "confidence" (least confident) or "random".
EXPERT_STRATEGY = "confidence"
#: The confidence score of `sample-experts`: "confidence" (top1 - top2 probability), "margin" (log-prob
#: margin) or "crossval" (the out-of-fold probability of the LLM label from a model trained on the labels
#: over frozen student embeddings, relative to the label's typical one: works for bare answers).
EXPERT_BY = "confidence"
#: What `merge-experts` does with an item whose annotations disagree: "error" (list them), "latest" (the
#: newest by created_at) or "majority" (the most frequent label; a tie is an error).
EXPERT_ON_CONFLICT = "error"
#: The Label Studio Choices control `merge-experts` reads the expert label from (the name llm2edge's
#: label config gives it).
EXPERT_CONTROL = "label"
#: Label smoothing of expert (one-hot) rows in `soft-labels`.
SOFT_SMOOTHING = 0.0
#: Temperature of the LLM's probabilities in `soft-labels` (<1 sharpens, >1 flattens).
SOFT_TEMPERATURE = 1.0
#: Where `soft-labels` takes the LLM rows' distributions from: "llm" (the labels file's probs), "crossval"
#: (out-of-fold probabilities of a model trained on the labels over frozen student embeddings) or "mix"
#: (the equal-weight average of the two).
SOFT_FROM = "llm"

# ------------------------------------------------------------------------------------------------- train
#: Passes over the training data.
TRAIN_EPOCHS = 3
#: Examples per batch (per process).
TRAIN_BATCH_SIZE = 32
#: Peak learning rate; measured on MiniLM-L6, 540 rows x 3 epochs: 1e-4 beat 5e-5 on 3 of 3 seeds.
TRAIN_LR = 1e-4
#: Seed of initialization, shuffling and the validation slice.
TRAIN_SEED = 42
#: Loss weights per class: "auto" (balanced when the most frequent label has more than 1.5x the rows of the
#: least frequent: llm2edge.hub.train.small_data), "balanced" (n / (k * n_c), sklearn's rule) or "none".
CLASS_WEIGHT = "auto"
#: Fewest optimizer steps of a fine-tuning run: on small sets the epochs are raised to reach it (0: exactly
#: --epochs). Issue 10: 3 epochs of ~350 skewed LLM labels (33 steps) left the student on one label.
TRAIN_MIN_STEPS = 100
#: The most epochs TRAIN_MIN_STEPS may raise a run to.
TRAIN_MAX_EPOCHS = 10
#: Which epoch's weights a fine-tuning run keeps: "macro_f1" (the best on the held-back slice) or "last".
TRAIN_BEST_BY = "macro_f1"
#: One label on at least this share of a slice is a collapse (train's guard on the student's predictions,
#: curate's warning on the labels a drop keeps), unless the labels it is judged against are that skewed.
COLLAPSE_SHARE = 0.95
#: What a fine-tuning run does when its kept weights collapse on the held-back slice (one label for >= 95%
#: of it while the training labels give that label less): "head" trains a head on the frozen encoder instead
#: (issue 10: FLAN-UL2's 92%-one-sided labels collapsed the fine-tuned student in 5 of 5 folds); "keep".
TRAIN_ON_COLLAPSE = "head"
#: Batches per optimizer step.
GRAD_ACCUM = 1
#: The student: "transformer" (fine-tune --model, MiniLM by default) or "static" (a token table distilled
#: from --model plus a linear head: about 50x faster per item, a few points less accurate).
STUDENT = "transformer"
#: Width of a static student's distilled token table (PCA of the source model's token vectors).
STATIC_DIMS = 256

# ------------------------------------------------------------------------------- train: the unlabeled pool
#: How the rows of an unlabeled pool (`train --unlabeled`) get their targets: "self" (self-training: a
#: head on the frozen encoder labels the pool, keeps its most confident rows under per-class quotas,
#: refits on them, POOL_ROUNDS times) or "oof" (the mean of the k out-of-fold models of the teacher's
#: labels, as soft targets). The default is the measured winner (experiments/README.md, "+pool").
POOL_METHOD = "self"
#: Accepted values of the pool method.
POOL_METHODS = ("self", "oof")
#: Labeling passes of self-training over the pool (a refit between passes).
POOL_ROUNDS = 2
#: Most pool rows kept per labeled training row (the budget; split into per-class quotas in proportion to
#: the teacher's label shares, so its majority label cannot snowball).
POOL_RATIO = 4.0
#: Noisy Student: dropout on the frozen features while the self-training head refits (0: none).
POOL_NOISE = 0.0
#: Pool rows read, embedded and cached per chunk (memory stays flat in the pool's size).
POOL_CHUNK_SIZE = 4096
#: Folds of the pool's guard (hub.train.pool.pool_check): the pool is used only if a head on the frozen
#: encoder keeps its agreement with the teacher on held-back labeled rows; 0: no check. Off by default: on
#: the 20 pooled recorded pairs the guard kept the pool in 17 of 100 naive folds, and the fine-tuned student
#: gained most where it would have refused (experiments/README.md, "+pool").
POOL_CHECK_FOLDS = 0
#: Agreement with the teacher (a share) the pool may cost in that check.
POOL_CHECK_TOLERANCE = 0.0

# ------------------------------------------------------------------------------------------------ export
#: Weight format of the shipped model: "int8" or "none" (fp32).
QUANTIZE = "int8"
#: int8 must agree with torch on at least this share of the validation texts, else fp32 ships.
MIN_AGREEMENT = 0.99
#: Validation rows export reads at most (the first ones).
MAX_VALIDATION = 2000
#: int8 is judged against torch on at least this many texts: the validation rows, topped up with the
#: training texts named in train_meta.json (agreement with torch needs no labels).
GUARD_TEXTS = 1000

# --------------------------------------------------------------------------------------- predict (edge)
#: Texts per model call.
PREDICT_BATCH_SIZE = 32
#: Rows read, classified and written at a time by `predict`.
CHUNK_SIZE = 2048
#: onnxruntime execution provider.
PROVIDER = "cpu"
#: Deferral of unsure predictions: "none", "auto" (the bundle's calibrated threshold) or a probability.
DEFER = "none"
#: Where `predict` runs a folder or glob of files: "local" (this process) or "ray" (Ray Data actors).
PREDICT_ENGINE = "local"
#: onnxruntime threads of each Ray actor or Spark task (BundlePredictor): one worker per CPU scales best.
WORKER_THREADS = 1
#: `predict --engine ray`: seconds without progress (a worker ready, a block read or written) before the
#: run is stopped with one line naming the stage; a block of CHUNK_SIZE rows of a MiniLM bundle takes
#: about 10 s on one busy CPU.
RAY_STALL_TIMEOUT_S = 300.0
#: `predict --engine ray --address HOST:PORT`: seconds to wait for HOST:PORT to answer at all.
RAY_CONNECT_TIMEOUT_S = 10.0

# --------------------------------------------------------------------------------------------- calibrate
#: The agreement (with the labels) that `calibrate` guarantees on the items a bundle keeps.
CALIBRATE_TARGET = 0.95
#: Confidence level of the Clopper-Pearson lower bound on that agreement.
CALIBRATE_CONFIDENCE = 0.95

# ------------------------------------------------------------------------------------------------- bench
#: Folder of `bench`'s speed.md, speed.json and speed.png.
BENCH_OUTPUT = "bench-out"
#: LLM rows of `bench`: "hf", "server" or "none".
BENCH_LLM = "hf"
#: Texts sampled from --texts.
BENCH_N_TEXTS = 256
#: Seconds of timed calls per system.
BENCH_BUDGET_S = 4.0

# -------------------------------------------------------------------------------------------------- demo
#: Folder for every stage's output of `demo`.
DEMO_OUT = "llm2edge-demo"
#: Labeling task of the shipped example (examples/movie_sentiment; `--dataset examples/reddit_humor --task
#: humor` runs the humour example, where SmolLM2-135M is near chance).
DEMO_TASK = "sentiment"
#: cleanlab in the demo: "drop", "flag" or "none".
DEMO_CURATE = "drop"
#: The demo's student learning rate: on the humour example's 400 items at 1e-4 the student stayed on the
#: LLM's majority label (0.500 -> 0.570 accuracy at 3e-4).
DEMO_LR = 3e-4
#: The demo's student loss weights: the LLM's labels are skewed (62% positive on the sentiment example's
#: balanced test split, about 80% funny on the humour example).
DEMO_CLASS_WEIGHT = "balanced"
#: Contextual calibration of the LLM's label scores in the demo.
DEMO_CALIBRATE = True
#: Demo sizes (full run, then --quick): train items labeled, test items scored, student epochs (quick:
#: head-only training on frozen embeddings), timed seconds per system. 1200 is the whole train split of the
#: sentiment example: on 400 LLM labels the student trailed its teacher by 4.5 points, on 1200 it matched it.
DEMO_TRAIN_ITEMS, DEMO_QUICK_TRAIN_ITEMS = 1200, 40
DEMO_TEST_ITEMS, DEMO_QUICK_TEST_ITEMS = 200, 24
DEMO_EPOCHS, DEMO_QUICK_EPOCHS = 2, 1
DEMO_BENCH_BUDGET_S, DEMO_QUICK_BENCH_BUDGET_S = 3.0, 0.5
