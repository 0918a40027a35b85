"""Per-customer intent classification: hashed n-grams -> mean embedding -> linear layer.

``train(rows, params, out_dir)`` is the trainer contract: rows in, metrics out, the servable model
written to ``out_dir / "model"`` in the :mod:`training.bow` format. It knows nothing of MLflow or
Dolt. Deterministic under ``params["seed"]``; uses CUDA when present.

Params (all optional): ``epochs`` (5), ``lr`` (0.01), ``batch_size`` (32), ``dim`` (32),
``buckets`` (4096), ``ngrams`` (2), ``eval_fraction`` (0.2), ``seed`` (0), ``text_column``
("text"), ``label_column`` ("label").
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from training.bow import BowModel, featurize

# Bit-for-bit the same model for the same rows, params and environment: seeded, one thread per
# worker (the kit's), deterministic algorithms on CUDA. 'platform-kit reproduce' relies on it.
DETERMINISTIC = True

DEFAULTS: dict[str, Any] = {
    "epochs": 5,
    "lr": 0.01,
    "batch_size": 32,
    "dim": 32,
    "buckets": 4096,
    "ngrams": 2,
    "eval_fraction": 0.2,
    "seed": 0,
    "text_column": "text",
    "label_column": "label",
}


def split(
    n: int, eval_fraction: float, seed: int
) -> tuple[list[int], list[int]]:  # train, eval indices
    """A seeded shuffle split; at least one row on each side."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_eval = min(n - 1, max(1, round(n * eval_fraction)))
    return sorted(order[n_eval:]), sorted(order[:n_eval])


def train(
    rows: Sequence[Mapping[str, Any]], params: Mapping[str, Any], out_dir: Path
) -> dict[str, float]:
    """Train on ``rows`` (each with a text and a label column) and export the model.

    Returns:
        ``accuracy`` and ``loss`` on the held-out split, ``train_loss``, ``n_train``, ``n_eval``.

    Raises:
        ValueError: fewer than two rows, or a row without the text or label column.
    """
    p = {**DEFAULTS, **params}
    text_column, label_column = str(p["text_column"]), str(p["label_column"])
    if len(rows) < 2:
        raise ValueError(f"needs at least 2 rows to train and evaluate, got {len(rows)}")
    missing = {text_column, label_column} - set(rows[0])
    if missing:
        raise ValueError(
            f"rows have no column {', '.join(sorted(missing))} (columns: {', '.join(rows[0])}); "
            "select them in the model's query or set params text_column/label_column"
        )
    # cuBLAS needs this set before CUDA starts to be deterministic.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch
    from torch import nn

    seed = int(p["seed"])
    buckets, dim, ngrams = int(p["buckets"]), int(p["dim"]), int(p["ngrams"])
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = False
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    labels = sorted({str(r[label_column]) for r in rows})
    label_index = {label: i for i, label in enumerate(labels)}
    ids = [featurize(str(r[text_column] or ""), buckets, ngrams) for r in rows]
    targets = [label_index[str(r[label_column])] for r in rows]
    train_idx, eval_idx = split(len(rows), float(p["eval_fraction"]), seed)

    def batch(indices: Sequence[int]) -> tuple[Any, Any, Any]:
        flat: list[int] = []
        offsets: list[int] = []
        for i in indices:
            offsets.append(len(flat))
            flat.extend(ids[i])
        return (
            torch.tensor(flat, dtype=torch.long, device=device),
            torch.tensor(offsets, dtype=torch.long, device=device),
            torch.tensor([targets[i] for i in indices], dtype=torch.long, device=device),
        )

    embedding = nn.EmbeddingBag(buckets, dim, mode="mean").to(device)
    linear = nn.Linear(dim, len(labels)).to(device)
    optimizer = torch.optim.Adam([*embedding.parameters(), *linear.parameters()], lr=float(p["lr"]))
    loss_fn = nn.CrossEntropyLoss()
    batch_size = max(1, int(p["batch_size"]))
    generator = torch.Generator().manual_seed(seed)
    train_loss = 0.0
    for _ in range(int(p["epochs"])):
        order = torch.randperm(len(train_idx), generator=generator).tolist()
        total, seen = 0.0, 0
        for start in range(0, len(order), batch_size):
            chunk = [train_idx[j] for j in order[start : start + batch_size]]
            tokens, offsets, y = batch(chunk)
            optimizer.zero_grad()
            loss = loss_fn(linear(embedding(tokens, offsets)), y)
            loss.backward()
            optimizer.step()
            total += float(loss.item()) * len(chunk)
            seen += len(chunk)
        train_loss = total / max(seen, 1)

    with torch.no_grad():
        tokens, offsets, y = batch(eval_idx)
        logits = linear(embedding(tokens, offsets))
        eval_loss = float(loss_fn(logits, y).item())
        accuracy = float((logits.argmax(dim=1) == y).float().mean().item())

    BowModel(
        labels=labels,
        buckets=buckets,
        dim=dim,
        ngrams=ngrams,
        embedding=embedding.weight.detach().cpu().numpy(),
        weight=linear.weight.detach().cpu().numpy(),
        bias=linear.bias.detach().cpu().numpy(),
    ).save(Path(out_dir) / "model")
    return {
        "accuracy": accuracy,
        "loss": eval_loss,
        "train_loss": train_loss,
        "n_train": float(len(train_idx)),
        "n_eval": float(len(eval_idx)),
    }
