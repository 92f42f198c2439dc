"""The training objective: conv8 cross-entropy + the K per-step regression losses."""

from __future__ import annotations

import torch

from .heatmap import heatmap_loss
from .network import Trace


def regression_losses(trace: Trace, target: torch.Tensor, size: int) -> torch.Tensor:
    """||S* - S^k - dS^k||^2 per step (K,), in crop-normalised units (coordinates / size),
    summed over x and y and averaged over landmarks and faces."""
    losses = []
    for k, ds in enumerate(trace.updates):
        s_k = trace.shapes[:, k].detach()
        r = (target - s_k - ds) / size
        losses.append((r**2).sum(-1).mean())
    return torch.stack(losses)


def drr_loss(trace: Trace, target: torch.Tensor, size: int, heatmap_weight: float = 1.0,
             regression_weight: float = 100.0) -> tuple[torch.Tensor, dict[str, float]]:
    hm = heatmap_loss(trace.logits, target, size // trace.logits.shape[-1])
    reg = regression_losses(trace, target, size)
    total = heatmap_weight * hm + regression_weight * reg.sum()
    return total, {"loss": float(total.detach()), "conv8": float(hm.detach()), "reg_last": float(reg[-1].detach())}
