"""Candidate shapes and the choice of S^0 (paper Sec. III-B).

The candidates are k-means centres of the training shapes in crop coordinates; S^0 is the
candidate nearest (L2) to the arg-max shape S_hat, so the refiner always starts from a
plausible face even where some heatmaps are wrong.
"""

from __future__ import annotations

import numpy as np
import torch


def kmeans(shapes: np.ndarray, k: int, iterations: int = 50, seed: int = 0) -> np.ndarray:
    """k-means++ seeding then Lloyd iterations on shapes (n, p, 2); returns (k, p, 2)."""
    x = np.asarray(shapes, dtype=np.float64).reshape(len(shapes), -1)
    n = len(x)
    if n == 0:
        raise ValueError("k-means needs at least one shape")
    k = min(k, n)
    rng = np.random.default_rng(seed)
    centres = [x[rng.integers(n)]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        total = d2.sum()
        i = rng.integers(n) if total <= 0 else rng.choice(n, p=d2 / total)
        centres.append(x[i])
        d2 = np.minimum(d2, ((x - x[i]) ** 2).sum(1))
    c = np.stack(centres)
    for _ in range(iterations):
        dist = ((x[:, None, :] - c[None]) ** 2).sum(-1)
        label = dist.argmin(1)
        new = np.stack([x[label == j].mean(0) if (label == j).any() else c[j] for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return c.reshape(k, *np.asarray(shapes).shape[1:])


def nearest_candidate(s_hat: torch.Tensor, candidates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of the nearest candidate for each face and all squared distances, (B,) and (B, N)."""
    d = ((s_hat[:, None] - candidates[None]) ** 2).sum(dim=(-2, -1))
    return d.argmin(1), d
