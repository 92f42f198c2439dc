"""Shape-indexed pooling (paper Sec. III-C).

For each landmark, the C channels of the feature map are max-pooled over a b x b box around
it, giving a C-vector per landmark. The box of a point at x covers the b pixels starting at
c - b // 2 with c = floor(x + 0.5) (centred for odd b), clipped to the map; a point outside the
map is first moved to the nearest edge pixel. Implementation: the map is viewed once as rows of
C-vectors (channels-last), and each step gathers only the b x b pixels of the 68 boxes and takes
their max: a few hundred rows instead of a max-pool over the whole map (which cost more than all
8 steps together at batch 1). Gradients go to the arg-max feature of each box; the coordinates
get none (they are only used as indices).
"""

from __future__ import annotations

import math

import torch


class BoxGather:
    """SIP on one feature map (B, C, H, W): its rows and the box offsets are prepared once per
    forward, then each refinement step costs one index computation and one gather."""

    def __init__(self, features: torch.Tensor, box: int, scale: float = 1.0) -> None:
        b, c, h, w = features.shape
        dev = features.device
        # (B H W, C): a view for channels-last maps, a copy otherwise
        self.rows = features.permute(0, 2, 3, 1).reshape(b * h * w, c)
        r = torch.arange(box, device=dev, dtype=torch.float32) - box // 2
        dy, dx = torch.meshgrid(r, r, indexing="ij")
        self.offsets = torch.stack([dx.reshape(-1), dy.reshape(-1)], dim=-1)  # (b*b, 2)
        self.upper = torch.tensor([w - 1.0, h - 1.0], device=dev)
        self.strides = torch.tensor([1.0, float(w)], device=dev)
        self.base = (torch.arange(b, device=dev, dtype=torch.float32) * (h * w))[:, None, None]
        self.scale, self.shift = scale, 0.5 * (scale - 1.0) + 0.5
        self.count = box * box

    def index(self, points: torch.Tensor) -> torch.Tensor:
        """Row indices (B, p, b*b) of every point's box; points (B, p, 2) in input pixels.
        Float arithmetic is exact here (indices < 2^24)."""
        with torch.no_grad():
            p = points.detach().float()
            centre = (p * self.scale + self.shift if self.scale != 1.0 else p + 0.5).floor_()
            centre = torch.minimum(centre.clamp_(min=0.0), self.upper)
            # clamping each box pixel to the map repeats edge pixels: the max is unchanged
            xy = torch.minimum((centre[:, :, None, :] + self.offsets).clamp_(min=0.0), self.upper)
            return (xy @ self.strides + self.base).long()

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """SIP features (B, p, C): the max over each box."""
        idx = self.index(points)
        b, p, n = idx.shape
        return self.rows.index_select(0, idx.reshape(-1)).reshape(b, p, n, -1).amax(2)


def sip(features: torch.Tensor, points: torch.Tensor, box: int, scale: float = 1.0) -> torch.Tensor:
    """Shape-indexed pooling of (B, C, H, W) features at points (B, p, 2): (B, p, C)."""
    return BoxGather(features, box, scale)(points)


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
