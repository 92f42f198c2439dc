"""The initialisation network's conv8 head: one probability map per landmark (paper Sec. III-B).

Channel i after a softmax over all H x W pixels is A^i; its target is
Q^i_jk = 0.5 ^ max(|x_i - j|, |y_i - k|), normalised to sum 1; the loss is -sum Q log A.

With heatmap_stride 2 (config), map pixel u covers input pixels 2u and 2u + 1: input coordinate x
(pixel-centre convention) is map coordinate (x - 0.5) / 2, and Q uses map pixels as its unit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def to_map(points: torch.Tensor, stride: int) -> torch.Tensor:
    """Input-pixel coordinates -> heatmap-pixel coordinates (both pixel-centre)."""
    return points if stride == 1 else (points - 0.5 * (stride - 1)) / stride


def from_map(points: torch.Tensor, stride: int) -> torch.Tensor:
    return points if stride == 1 else points * stride + 0.5 * (stride - 1)


class Conv8(nn.Module):
    """conv8 on deconv7. With coord_prior, five fixed maps (x, y, x^2, y^2, xy on [-1, 1]) are
    added to its input: a linear map of them is a Gaussian-shaped log-prior per landmark, so
    the heatmaps start at "where this landmark usually is in the crop" instead of uniform over
    16k pixels. Trained from scratch without it, conv8 stayed at the uniform loss ln(H W) for
    the first minutes (see drr-method.md); the paper's ImageNet-initialised VGG did not have
    that problem."""

    # A peaked softmax over H x W pixels needs logits spanning ~10 nats. Adam moves each weight
    # by ~lr per step, so the feature part is scaled up (a fixed higher learning rate for conv8).
    LOGIT_SCALE = 8.0

    def __init__(self, channels: int, num_points: int, coord_prior: bool = True, kernel: int = 3) -> None:
        super().__init__()
        self.coord_prior = coord_prior
        self.logit_scale = self.LOGIT_SCALE
        self.conv = nn.Conv2d(channels, num_points, kernel, padding=kernel // 2)
        nn.init.normal_(self.conv.weight, std=0.01)
        nn.init.zeros_(self.conv.bias)
        self.prior = nn.Conv2d(5, num_points, 1, bias=False) if coord_prior else None
        if self.prior is not None:
            nn.init.zeros_(self.prior.weight)
        self._grid: torch.Tensor | None = None

    @torch.no_grad()
    def init_prior(self, mean: torch.Tensor, std: torch.Tensor, size: int, stride: int = 1) -> None:
        """Set the prior to each landmark's Gaussian log-density over the crop: mean and std
        (p, 2) in crop pixels, from the training shapes; size = crop side in input pixels."""
        if self.prior is None:
            return
        to_unit = 2.0 / (size // stride - 1)
        m = to_map(mean.float(), stride) * to_unit - 1.0
        v = (std.float() / stride * to_unit) ** 2 + 1e-4
        w = torch.stack([m[:, 0] / v[:, 0], m[:, 1] / v[:, 1], -0.5 / v[:, 0], -0.5 / v[:, 1],
                         torch.zeros_like(v[:, 0])], dim=1)
        self.prior.weight.copy_(w[:, :, None, None])

    def _coords(self, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        g = self._grid
        if g is None or g.shape[-2:] != (h, w) or g.device != like.device:
            # built outside inference mode: a cache made during prediction must stay usable
            # for training the same module afterwards
            with torch.inference_mode(False):
                y, x = torch.meshgrid(torch.linspace(-1, 1, h, device=like.device),
                                      torch.linspace(-1, 1, w, device=like.device), indexing="ij")
                g = torch.stack([x, y, x * x, y * y, x * y])[None]
            self._grid = g
        return g.to(like.dtype)

    def prior_map(self, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
        """The position prior (1, p, H, W); it does not depend on the picture."""
        assert self.prior is not None
        return self.prior(self._coords(h, w, like))

    def forward(self, deconv7: torch.Tensor) -> torch.Tensor:
        """Logits (B, p, H, W), contiguous; softmax over pixels gives the probability maps."""
        # contiguous (not channels-last): the softmax and arg-max run over each map's pixels
        out = (self.conv(deconv7) * self.logit_scale).contiguous()
        if self.prior is not None:
            out = out + self.prior_map(out.shape[-2], out.shape[-1], out)
        return out


def q_target(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Target maps (B, p, H, W) for points (B, p, 2) in 0-based pixel-centre coordinates."""
    xs = torch.arange(width, device=points.device, dtype=torch.float32)
    ys = torch.arange(height, device=points.device, dtype=torch.float32)
    dx = (xs[None, None, None, :] - points[..., 0, None, None].float()).abs()
    dy = (ys[None, None, :, None] - points[..., 1, None, None].float()).abs()
    q = torch.pow(0.5, torch.maximum(dx, dy))
    return q / q.sum(dim=(-2, -1), keepdim=True)


def heatmap_loss(logits: torch.Tensor, points: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """Cross-entropy -sum_jk Q log A, summed over pixels, averaged over landmarks and faces;
    points (B, p, 2) in input pixels."""
    b, p, h, w = logits.shape
    logp = F.log_softmax(logits.float().reshape(b, p, h * w), dim=-1)
    q = q_target(to_map(points, stride), h, w).reshape(b, p, h * w)
    return -(q * logp).sum(-1).mean()


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    b, p, h, w = logits.shape
    return F.softmax(logits.float().reshape(b, p, h * w), dim=-1).reshape(b, p, h, w)


def argmax_shape(logits: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """S_hat: the arg-max pixel of each map, (B, p, 2) as (x, y) in input pixels."""
    b, p, h, w = logits.shape
    idx = logits.reshape(b, p, h * w).argmax(-1)
    return from_map(torch.stack([(idx % w).float(), (idx // w).float()], dim=-1), stride)
