"""The servable adapter format: hashed n-gram bag of words -> mean embedding -> linear layer.

This module is the contract between a trainer (which writes the format; the sample trainer
imports it as :mod:`training.bow`) and the serving image, which carries this very file as
``bow.py`` beside its server. It needs only numpy and the standard library, so releases carry no
PyTorch, and it imports nothing else from the kit.

An exported model is a directory holding:

- ``model.json``: ``{"format": FORMAT, "labels": [...], "buckets": int, "dim": int,
  "ngrams": int}``
- ``weights.npz``: ``embedding`` (buckets x dim), ``weight`` (labels x dim), ``bias`` (labels)
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FORMAT = "platform-kit.bow-linear/1"
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"
_TOKEN = re.compile(r"[a-z0-9']+")


def featurize(text: str, buckets: int, ngrams: int = 2) -> list[int]:
    """Token ids for ``text``: word n-grams hashed into ``1..buckets-1`` (0 means "no tokens").

    crc32 rather than ``hash()``: Python's string hash is salted per process.
    """
    words = _TOKEN.findall(text.lower())
    grams = list(words)
    for n in range(2, ngrams + 1):
        grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    if not grams:
        return [0]
    return [1 + zlib.crc32(g.encode("utf-8")) % (buckets - 1) for g in grams]


@dataclass
class BowModel:
    labels: list[str]
    buckets: int
    dim: int
    ngrams: int
    embedding: npt.NDArray[np.float32]
    weight: npt.NDArray[np.float32]
    bias: npt.NDArray[np.float32]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": FORMAT,
            "labels": self.labels,
            "buckets": self.buckets,
            "dim": self.dim,
            "ngrams": self.ngrams,
        }
        (directory / MODEL_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        arrays = {"embedding": self.embedding, "weight": self.weight, "bias": self.bias}
        _save_npz(directory / WEIGHTS_FILE, arrays)

    @classmethod
    def load(cls, directory: Path) -> BowModel:
        meta = json.loads((directory / MODEL_FILE).read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{directory}: not a {FORMAT} model (format {meta.get('format')!r})")
        with np.load(directory / WEIGHTS_FILE) as weights:
            return cls(
                labels=list(meta["labels"]),
                buckets=int(meta["buckets"]),
                dim=int(meta["dim"]),
                ngrams=int(meta["ngrams"]),
                embedding=weights["embedding"],
                weight=weights["weight"],
                bias=weights["bias"],
            )

    def scores(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Softmax probabilities, one row per text, one column per label."""
        pooled = (
            np.stack(
                [
                    self.embedding[featurize(t, self.buckets, self.ngrams)].mean(axis=0)
                    for t in texts
                ]
            )
            if texts
            else np.zeros((0, self.dim), dtype=np.float32)
        )
        logits = pooled @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True) if len(texts) else 0
        exp = np.exp(logits)
        probabilities: npt.NDArray[np.float32] = (exp / exp.sum(axis=1, keepdims=True)).astype(
            np.float32
        )
        return probabilities

    def predict(self, texts: Sequence[str]) -> list[dict[str, object]]:
        """``[{"label": best, "score": p, "scores": {label: p}}]`` for each text."""
        out: list[dict[str, object]] = []
        for row in self.scores(texts):
            best = int(row.argmax())
            out.append(
                {
                    "label": self.labels[best],
                    "score": float(row[best]),
                    "scores": {label: float(p) for label, p in zip(self.labels, row, strict=True)},
                }
            )
        return out


def _save_npz(path: Path, arrays: dict[str, npt.NDArray[np.float32]]) -> None:
    """np.savez's format with fixed entry timestamps: equal weights give equal bytes (np.savez
    stamps each entry with the current time, so no two trainings would be bit-for-bit equal)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, buffer.getvalue())
