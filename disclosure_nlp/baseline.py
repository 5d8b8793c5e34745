"""The TF-IDF + logistic-regression baseline every evaluation is shown against.

A fair baseline is a strong one: word uni- and bigrams plus character n-grams (which catch
slang, typos and emoji a word vocabulary misses), with the regularisation strength chosen by
cross-validation on the training split only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)


@dataclass
class TfidfBaseline:
    pipeline: object
    c: float

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[int], *, seed: int = 0) -> "TfidfBaseline":
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV, StratifiedKFold
        from sklearn.pipeline import FeatureUnion, Pipeline

        features = FeatureUnion(
            [
                ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)),
                ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)),
            ]
        )
        pipeline = Pipeline([("tfidf", features), ("lr", LogisticRegression(max_iter=3000))])
        counts = [list(labels).count(label) for label in set(labels)]
        folds = min(3, min(counts)) if counts else 0
        if folds >= 2 and len(set(labels)) > 1:
            search = GridSearchCV(
                pipeline,
                {"lr__C": list(C_GRID)},
                cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
                scoring="f1_macro",
                n_jobs=1,
            )
            search.fit(list(texts), list(labels))
            return cls(search.best_estimator_, float(search.best_params_["lr__C"]))
        pipeline.fit(list(texts), list(labels))
        return cls(pipeline, 1.0)

    def predict_proba(self, texts: Sequence[str]):
        """Probabilities over all four layers (zeros for a layer absent from training)."""
        import numpy as np

        from .layers import LAYERS

        raw = self.pipeline.predict_proba(list(texts))
        out = np.zeros((len(texts), len(LAYERS)), dtype=float)
        out[:, self.pipeline.classes_] = raw
        return out
