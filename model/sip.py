"""Shape-indexed pooling (paper Sec. III-C).

For each landmark, the C channels of the feature map are max-pooled over a b x b box around
it, giving a C-vector per landmark. The box of a point at x covers the b pixels starting at
c - b // 2 with c = floor(x + 0.5) (centred for odd b), clipped to the map; a point outside the
map is first moved to the nearest edge pixel. Each step gathers the b x b pixels of the p boxes
and takes their max (the backward of whole-map maxima cost a tenth of a training step, this
gather's almost nothing; inference.BoxMaxGather computes the whole map's box maxima once
instead). Gradients go to the arg-max feature of each box; the coordinates get none (they are
only used as indices).
"""

from __future__ import annotations

import functools
import math

import torch


@functools.lru_cache(maxsize=16)
def _constants(box: int, h: int, w: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Box pixel offsets (b*b, 2), the map's lower and upper pixel (2,), and the row stride
    (2,): the row of pixel (x, y) is x + y w. Cached: a forward would otherwise spend more on
    making these small tensors than on a step's gather."""
    with torch.inference_mode(False):
        r = torch.arange(box, device=device, dtype=torch.float32) - box // 2
        dy, dx = torch.meshgrid(r, r, indexing="ij")
        offsets = torch.stack([dx.reshape(-1), dy.reshape(-1)], dim=-1)
        lower = torch.zeros(2, device=device)
        upper = torch.tensor([w - 1.0, h - 1.0], device=device)
        stride = torch.tensor([1.0, float(w)], device=device)
    return offsets, lower, upper, stride


class BoxGather:
    """SIP on one feature map (B, C, H, W): prepared once per forward, then one gather of the
    box pixels per step."""

    def __init__(self, features: torch.Tensor, box: int, scale: float = 1.0) -> None:
        b, c, h, w = features.shape
        # rows of C-vectors (B H W, C): a view for channels-last maps, a copy otherwise
        self.rows = features.permute(0, 2, 3, 1).reshape(b * h * w, c)
        self.offsets, self.lower, self.upper, self.stride = _constants(box, h, w, features.device)
        # first row of each face's map, added only for batches of several faces
        self.base = (torch.arange(b, device=features.device, dtype=torch.float32) * (h * w))[:, None] if b > 1 else None
        self.scale, self.shift = scale, 0.5 * (scale - 1.0) + 0.5

    def _centre(self, points: torch.Tensor) -> torch.Tensor:
        """Box centre pixel (B, p, 2) of points given in input pixels: floor(x + 0.5) on this
        map, moved into the map."""
        p = points.detach()
        centre = (p * self.scale + self.shift if self.scale != 1.0 else p + 0.5).floor_()
        return torch.clamp(centre, min=self.lower, max=self.upper)

    def _flat(self, xy: torch.Tensor) -> torch.Tensor:
        """Row index of pixel (x, y) in float32 element-wise arithmetic, exact below 2^24. Not a
        matmul: under bf16 autocast a matmul would round the indices to 8 significant bits."""
        flat = (xy * self.stride).sum(-1)
        if self.base is not None:
            flat += self.base.reshape(-1, *([1] * (xy.dim() - 2)))
        return flat.long()

    @torch.no_grad()
    def box_index(self, points: torch.Tensor) -> torch.Tensor:
        """Row indices (B, p, b*b) of every pixel of every point's box. Clamping each box pixel
        to the map repeats edge pixels, which leaves the max unchanged."""
        xy = self._centre(points)[:, :, None, :] + self.offsets
        return self._flat(torch.clamp(xy, min=self.lower, max=self.upper))

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        """SIP features (B, p, C)."""
        idx = self.box_index(points)
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
