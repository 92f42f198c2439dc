"""Shape-indexed pooling (paper Sec. III-C).

For each landmark, the C channels of the feature map are max-pooled over a b x b box around
it, giving a C-vector per landmark. The box of a point at x covers the b pixels starting at
c - b // 2 with c = floor(x + 0.5) (centred for odd b), clipped to the map; a point outside the
map is first moved to the nearest edge pixel. Implementation: one stride-1 max-pool of the
whole map, then one gather per step, so the 8 steps cost 8 cheap gathers. Gradients go to the arg-max
feature of each box; the coordinates get none (they are only used as indices).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def box_maxima(features: torch.Tensor, box: int) -> torch.Tensor:
    """Max over every b x b window, same size as the map: entry [i, j] covers rows
    i - b//2 .. i - b//2 + b - 1 (and likewise columns), -inf outside the map."""
    out = F.max_pool2d(features, kernel_size=box, stride=1, padding=box // 2)
    return out[..., : features.shape[-2], : features.shape[-1]]


def pool_at(maxima: torch.Tensor, points: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """SIP features (B, p, C) at points (B, p, 2) given in input pixels; `scale` maps input
    pixels to this feature map (0.5 for deconv6)."""
    b, c, h, w = maxima.shape
    with torch.no_grad():
        p = points.detach().float() * scale + 0.5 * (scale - 1.0)
        centre = torch.floor(p + 0.5).long()
        x = centre[..., 0].clamp(0, w - 1)
        y = centre[..., 1].clamp(0, h - 1)
        batch = torch.arange(b, device=points.device)[:, None]
        index = ((batch * h + y) * w + x).reshape(-1)
    # channels-last rows are C-vectors, so one index_select gathers every landmark's features
    rows = maxima.permute(0, 2, 3, 1).reshape(b * h * w, c)
    return rows.index_select(0, index).reshape(b, -1, c)


def sip_brute_force(features: torch.Tensor, points: torch.Tensor, box: int) -> torch.Tensor:
    """Reference implementation with explicit loops, for the tests."""
    b, c, h, w = features.shape
    out = features.new_empty(b, points.shape[1], c)
    for n in range(b):
        for i in range(points.shape[1]):
            cx = min(max(int(math.floor(float(points[n, i, 0]) + 0.5)), 0), w - 1)
            cy = min(max(int(math.floor(float(points[n, i, 1]) + 0.5)), 0), h - 1)
            x0, y0 = cx - box // 2, cy - box // 2
            xs, ys = slice(max(x0, 0), min(x0 + box, w)), slice(max(y0, 0), min(y0 + box, h))
            out[n, i] = features[n, :, ys, xs].amax(dim=(-2, -1))
    return out
