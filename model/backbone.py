"""Resolution-preserving conv-deconv backbones (paper Sec. III-A, Table VII).

Both keep only pool1 and pool2, so conv3..conv5 run at H/4, then deconv6 and deconv7
(4x4, stride 2, pad 1) bring the maps back to H x W. forward returns (deconv6, deconv7).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int, bn: bool, dilation: int = 1) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=dilation * (k // 2), dilation=dilation, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return layers


def _deconv(cin: int, cout: int, bn: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=not bn)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _w(c: int, width: float) -> int:
    return max(8, int(round(c * width)))


class Backbone(nn.Module):
    def __init__(self, kind: str, width: float = 1.0, batch_norm: bool = True,
                 dilations: tuple[int, int, int] = (1, 1, 1), deconv_channels: int = 0) -> None:
        super().__init__()
        bn = batch_norm
        if kind == "vgg19":
            # VGG-19's 16 convolutions; pool3, pool4, pool5 and fc6-8 removed.
            cfg = [[64, 64], [128, 128], [256] * 4 + [512] * 4 + [512] * 4]
            layers: list[nn.Module] = []
            cin = 3
            for block, chans in enumerate(cfg):
                for c in chans:
                    layers += _conv(cin, _w(c, width), 3, bn)
                    cin = _w(c, width)
                if block < 2:
                    layers.append(nn.MaxPool2d(2, 2))
        elif kind in ("vgg-s", "small"):
            c1, c2, c3 = _w(96, width), _w(256, width), _w(512, width)
            layers = _conv(3, c1, 7, bn) + [nn.MaxPool2d(2, 2)]
            layers += _conv(c1, c2, 5, bn) + [nn.MaxPool2d(2, 2)]
            d3, d4, d5 = dilations
            layers += _conv(c2, c3, 3, bn, d3) + _conv(c3, c3, 3, bn, d4) + _conv(c3, c3, 3, bn, d5)
            cin = c3
        else:
            raise ValueError(f"unknown backbone {kind!r}")
        self.features = nn.Sequential(*layers)
        self.deconv_channels = deconv_channels or (_w(96, width) if kind == "small" else 96)
        self.deconv6 = _deconv(cin, self.deconv_channels, bn)
        self.deconv7 = _deconv(self.deconv_channels, self.deconv_channels, bn)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d6 = self.deconv6(self.features(x))
        return d6, self.deconv7(d6)

