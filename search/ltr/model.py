"""The learned-fusion model: a LightGBM LambdaMART ranker over `search.ltr.features`, saved as a small text
file with a JSON training manifest next to it (`search/ltr/models/`, written by `visual-intent train-fusion`).

No model ships with the package: on the judged sets it did not beat the hand-set weighted fusion on held-out
folds (README, "Learned fusion"). `--fusion learned` uses a model you train.

The manifest records the feature names in order; loading a model whose features differ from the code's is an
error that says to retrain, never a silent mis-scoring.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from search.channels import ChannelResult
from search.evidence import SlotTerm
from search.intent import IntentFrame
from search.ltr.features import FEATURES, candidate_features
from search.snapshot import Snapshot

if TYPE_CHECKING:
    from search.ltr.train import QueryGroup

MODELS = Path(__file__).parent / "models"
MODEL_NAME = "fusion-v1"
# Small and regularised: a few hundred judged queries, a model that must transfer to other catalogs.
PARAMS: dict[str, Any] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [10],
    "learning_rate": 0.05,
    "num_leaves": 7,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "lambdarank_truncation_level": 20,
    "verbose": -1,
    "num_threads": 2,
    "deterministic": True,
}
ROUNDS = 150


class ModelError(RuntimeError):
    pass


def fit_booster(groups: Sequence[QueryGroup], seed: int = 0, rounds: int = ROUNDS, **params: Any) -> Any:
    import lightgbm as lgb

    usable = [g for g in groups if len(g.grades)]
    data = lgb.Dataset(
        np.vstack([g.features for g in usable]),
        label=np.concatenate([g.grades for g in usable]),
        group=[len(g.grades) for g in usable],
        feature_name=list(FEATURES),
        free_raw_data=True,
    )
    return lgb.train({**PARAMS, "seed": seed, **params}, data, num_boost_round=rounds)


class LearnedFusion:
    def __init__(self, booster: Any):
        self.booster = booster

    def score(self, features: np.ndarray) -> np.ndarray:
        if not len(features):
            return np.zeros(0, dtype=np.float64)
        return np.asarray(self.booster.predict(features, num_threads=1), dtype=np.float64)

    def save(self, folder: Path, name: str, manifest: dict[str, Any]) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        model, info = folder / f"{name}.txt", folder / f"{name}.json"
        self.booster.save_model(str(model))
        info.write_text(json.dumps({**manifest, "features": list(FEATURES)}, indent=2) + "\n", encoding="utf-8")
        return [model, info]

    @classmethod
    def load(cls, folder: Path | None = None, name: str = MODEL_NAME) -> LearnedFusion:
        import lightgbm as lgb

        folder = folder or MODELS
        model, info = folder / f"{name}.txt", folder / f"{name}.json"
        if not model.is_file() or not info.is_file():
            raise ModelError(f"learned fusion model {model} not found; train it with `visual-intent train-fusion`")
        features = json.loads(info.read_text(encoding="utf-8")).get("features")
        if features != list(FEATURES):
            raise ModelError(f"{model} was trained on other features; retrain it with `visual-intent train-fusion`")
        return cls(lgb.Booster(model_file=str(model)))


@lru_cache(maxsize=1)
def default_model() -> LearnedFusion:
    return LearnedFusion.load()


def learned_scores(
    snap: Snapshot, frame: IntentFrame, results: Sequence[ChannelResult], terms: Sequence[SlotTerm], allowed: np.ndarray
) -> dict[int, float]:
    """Row -> model score squashed into (0, 1), so negation demotion and priors (multipliers) keep their sense."""
    rows, features = candidate_features(snap, frame, results, terms, allowed)
    scores = 1.0 / (1.0 + np.exp(-default_model().score(features)))
    return {int(r): float(s) for r, s in zip(rows, scores, strict=True)}
