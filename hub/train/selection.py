"""Best-epoch selection: keep the weights of the epoch with the best macro-F1 on the held-back slice.

With a short schedule on skewed labels the last epoch is not always the best one (it may still predict
one label). After every epoch the model is scored on the validation slice (its LLM labels); the best
weights are kept in memory and in OUT/checkpoints/best/ (so a resumed run still knows them), and restored
before the model is saved. Ties go to the later epoch. `best_by="last"` keeps the last epoch (the old rule).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from llm2edge.hub.train.checkpoints import write_json

#: The folder under OUT/checkpoints holding the best epoch's weights.
BEST = "best"


class BestEpoch:
    """The best epoch so far by a score (higher is better), its weights on the CPU and on disk."""

    def __init__(self, root: Path, key: str, *, enabled: bool, main: bool) -> None:
        self.folder = root / BEST
        self.key = key
        self.enabled = enabled
        self.main = main
        self.epoch = 0
        self.score = float("-inf")
        self.history: list[dict[str, Any]] = []
        self._state: dict[str, torch.Tensor] | None = None

    def load(self) -> None:
        """Pick up the best epoch a crashed run of the same fingerprint saved (else start empty)."""
        meta = self.folder / "best.json"
        if not (self.enabled and meta.is_file()):
            return
        info = json.loads(meta.read_text(encoding="utf-8"))
        if info.get("config_hash") != self.key:
            return
        from safetensors.torch import load_file

        self.epoch, self.score = int(info["epoch"]), float(info["score"])
        self.history = list(info.get("history") or [])
        self._state = load_file(str(self.folder / info["weights"]))

    def update(self, epoch: int, score: float, model: Any) -> bool:
        """Record `epoch`'s score; keep its weights if it is the best so far (>=: later epochs win ties)."""
        self.history.append({"epoch": epoch, "score": round(score, 6)})
        if not self.enabled:
            return False
        improved = score >= self.score
        if improved:
            self.epoch, self.score = epoch, score
            self._state = {k: v.detach().to("cpu").clone().contiguous()
                           for k, v in model.state_dict().items()}
        if self.main:
            self._save(improved)
        return improved

    def _save(self, weights: bool) -> None:
        """Write the best weights (when new) under a name per epoch, then best.json naming them; drop the
        older weights last, so a crash at any point leaves a consistent pair."""
        from safetensors.torch import save_file

        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"model-epoch-{self.epoch}.safetensors"
        if weights:
            tmp = self.folder / (name + ".tmp")
            save_file(self._state, str(tmp))
            os.replace(tmp, self.folder / name)
        write_json(self.folder / "best.json", {"epoch": self.epoch, "score": self.score, "weights": name,
                                               "config_hash": self.key, "history": self.history})
        for old in self.folder.glob("model-epoch-*.safetensors"):
            if old.name != name:
                old.unlink(missing_ok=True)

    def restore(self, model: Any, last_epoch: int) -> int:
        """Load the best weights into `model` when they are not the last epoch's; the epoch kept."""
        if not self.enabled or self._state is None or self.epoch == last_epoch:
            return last_epoch
        model.load_state_dict(self._state)
        return self.epoch

