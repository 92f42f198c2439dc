"""The architecture configuration: everything needed to rebuild a network from a checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .options import option


@dataclass
class DRRConfig:
    """The architecture; the fields with a help text are also drr-train's architecture flags
    (model/options.py), applied over the chosen preset."""

    backbone: str = "small"  # "vgg19", "vgg-s" or "small" (VGG-S shape, narrower)
    width: float = option(0.125, "backbone width multiplier (1.0 = paper widths)")
    input_size: int = option(128, "crop side in pixels, a multiple of 4 (e.g. 128 or 256)")
    num_points: int = 68
    num_candidates: int = option(50, "number of k-means candidate shapes N", flag="--candidates")
    steps: int = option(8, "K refinement steps")
    sip_box: float = 0.0  # SIP box side b in input pixels; 0 = 6 * input_size / 256 (paper)
    sip_deconv6: bool = option(False, "also pool from deconv6 (paper Table XIV)")
    lstm_hidden: int = option(128, "LSTM width")
    recurrent: bool = option(True, "regress from the SIP features alone (paper Table IX)", flag="--no-recurrent")
    init: str = option("candidates", "S0: the nearest k-means candidate (paper) or the mean shape (Table X)",
                       flag="--initial-shape", choices=("candidates", "mean"))
    batch_norm: bool = True  # trained from scratch here, without ImageNet weights
    coord_prior: bool = True  # learned per-landmark position prior in conv8 (see heatmap.py)
    # 1: conv8 on deconv7 at the input resolution (paper); 2: conv8 on deconv6 at half of it,
    # a quarter of the heatmap cost (SIP still pools deconv7 at full resolution)
    heatmap_stride: int = option(1, "conv8 on deconv7 at full resolution (1, paper) or on deconv6 at half (2)",
                                 choices=(1, 2))
    # dilation of conv3, conv4, conv5 of the VGG-S shapes ("small", "vgg-s"): the same cost per
    # layer, a wider view. At 1/8 width and 128 input the undilated receptive field (~47 px)
    # covers half of a face; a jaw point on a plain cheek needs the rest of it.
    dilations: tuple[int, int, int] = option((1, 1, 1), "dilation of conv3 conv4 conv5 (VGG-S shapes), e.g. 1 2 4",
                                             nargs=3, metavar="D")
    conv8_kernel: int = option(3, "conv8 kernel side: 3, or 1 (a per-pixel linear map)", choices=(1, 3))
    deconv_channels: int = option(0, "channels of deconv6/7, what SIP pools (0: 96 x width for small)")
    # crops are rotated so that the eye line is level (in training from the annotated eyes plus
    # a small jitter, at test time from the detector's eye points or a first pass), so the
    # network spends no capacity on in-plane rotation; see geometry.levelled_box
    level_eyes: bool = option(False, "rotate every crop so that the eye line is level (annotated eyes in "
                              "training; detector eyes or a first pass at test time)")

    def __post_init__(self) -> None:
        self.dilations = tuple(int(d) for d in self.dilations)  # a list after a checkpoint round trip
        if len(self.dilations) != 3 or min(self.dilations) < 1:
            raise ValueError(f"dilations must be three integers >= 1, got {self.dilations}")
        if self.backbone == "vgg19" and self.dilations != (1, 1, 1):
            raise ValueError("dilations apply to the VGG-S shapes (small, vgg-s), not vgg19")
        if self.conv8_kernel not in (1, 3):
            raise ValueError(f"conv8_kernel must be 1 or 3, got {self.conv8_kernel}")
        if self.deconv_channels < 0:
            raise ValueError(f"deconv_channels must be >= 0, got {self.deconv_channels}")
        if self.input_size % 4 or self.input_size < 32:
            raise ValueError(f"input_size must be a multiple of 4 and >= 32, got {self.input_size}")
        if self.backbone not in ("vgg19", "vgg-s", "small"):
            raise ValueError(f"unknown backbone {self.backbone!r} (vgg19, vgg-s, small)")
        if self.heatmap_stride not in (1, 2):
            raise ValueError(f"heatmap_stride must be 1 or 2, got {self.heatmap_stride}")
        if self.init not in ("candidates", "mean"):
            raise ValueError(f"unknown init {self.init!r} (candidates, mean)")

    @property
    def box(self) -> float:
        return self.sip_box if self.sip_box > 0 else 6.0 * self.input_size / 256.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DRRConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown configuration keys {sorted(unknown)}")
        return cls(**d)


PRESETS: dict[str, dict] = {
    # The shipped CPU model: VGG-S shape at 1/8 width, 128 input, conv8 at half resolution.
    "default": dict(backbone="small", width=0.125, input_size=128, heatmap_stride=2),
    "small-wide": dict(backbone="small", width=0.25, input_size=128),
    "vgg-s": dict(backbone="vgg-s", width=1.0, input_size=256),
    "vgg-s-128": dict(backbone="vgg-s", width=1.0, input_size=128),
    "vgg19": dict(backbone="vgg19", width=1.0, input_size=256, lstm_hidden=512),
    "vgg19-128": dict(backbone="vgg19", width=1.0, input_size=128, lstm_hidden=512),
}
