"""The training objective: conv8 cross-entropy + the K per-step regression losses."""

from __future__ import annotations

import torch

from .heatmap import heatmap_loss
from .network import Trace

REGRESSION_LOSSES = ("l2", "distance")


def regression_losses(trace: Trace, target: torch.Tensor, size: int, kind: str = "l2") -> torch.Tensor:
    """Per step (K,), in crop-normalised units (coordinates / size), averaged over landmarks
    and faces: "l2" is the paper's ||S* - S^k - dS^k||^2; "distance" is each point's Euclidean
    distance to its target, which is what NME measures (a few badly placed points do not
    dominate the gradient as they do under the square)."""
    if kind not in REGRESSION_LOSSES:
        raise ValueError(f"unknown regression loss {kind!r} ({', '.join(REGRESSION_LOSSES)})")
    losses = []
    for k, ds in enumerate(trace.updates):
        s_k = trace.shapes[:, k].detach()
        r2 = (((target - s_k - ds) / size) ** 2).sum(-1)
        # the epsilon keeps the gradient finite at zero error (about 0.01 px at 128)
        losses.append(r2.mean() if kind == "l2" else (r2 + 1e-8).sqrt().mean())
    return torch.stack(losses)


def drr_loss(trace: Trace, target: torch.Tensor, size: int, heatmap_weight: float, regression_weight: float,
             regression_loss: str = "l2") -> tuple[torch.Tensor, dict[str, float]]:
    """The weights have no defaults of their own: they are TrainOptions.heatmap_weight and
    regression_weight."""
    hm = heatmap_loss(trace.logits, target, size // trace.logits.shape[-1])
    reg = regression_losses(trace, target, size, regression_loss)
    total = heatmap_weight * hm + regression_weight * reg.sum()
    return total, {"loss": float(total.detach()), "conv8": float(hm.detach()), "reg_last": float(reg[-1].detach())}
