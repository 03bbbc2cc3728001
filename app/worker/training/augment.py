"""Batched augmentation on the tensor's own device: one set of tensor ops per batch, no PIL.

airbench's recipe, generalised: the batch arrives as uint8 (B, 3, S, S) gathered from the
data tensor, every random choice is drawn for the whole batch at once from a seeded
generator, and normalisation is fused into the last step. The presets:

- `none`: normalise only;
- `standard`: horizontal flip (where the data set allows it) and a random translation of up to
  S/8 px after reflect padding (4 px at 32 px, the classic CIFAR recipe);
- `strong`: random-resized-crop (area 35–100 %, aspect 3/4–4/3) and flip in one
  `grid_sample`, then brightness, contrast and saturation jitter of ±30 %.

MixUp (Zhang et al., 2018) and CutMix (Yun et al., 2019) act on the normalised batch and
return soft targets, pairing each image with its neighbour (`roll(1)`, as torchvision's
`v2.MixUp`/`v2.CutMix` do); with both on, each batch uses one of the two, chosen at random.
Their per-batch numbers (λ, which of the two, the box) come from a CPU generator so the GPU
never waits on the CPU for them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TRANSLATE_FRACTION = 1 / 8  # standard: translate by up to S/8 px
CROP_SCALE = (0.35, 1.0)  # strong: share of the image's area a crop keeps
CROP_RATIO = (3 / 4, 4 / 3)  # strong: the crop's aspect ratio
JITTER = 0.3  # strong: brightness/contrast/saturation factors in [1 − J, 1 + J]
GREY = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma weights, as torchvision's rgb_to_grayscale


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image of (B, C, H, W) left-right with probability ½."""
    flip = torch.rand(len(x), generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_translate(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Reflect-pad by `pad` px, then crop each image back to H × W at a random offset.

    The crop is two batched gathers (rows, then columns), not a Python loop over images.
    """
    if pad <= 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    offsets = torch.randint(0, 2 * pad + 1, (2, b), generator=generator, device=x.device)
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * pad))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def random_resized_crop_flip(
    x: torch.Tensor, generator: torch.Generator, flip: bool = True
) -> torch.Tensor:
    """Crop a random box of each image (area and aspect from CROP_*) and resize it back.

    One affine `grid_sample` per batch (bilinear); with `flip`, half the boxes are mirrored.
    """
    b = len(x)
    rand = torch.rand(4, b, generator=generator, device=x.device)
    area = CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * rand[0]
    log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    ratio = torch.exp(log_lo + (log_hi - log_lo) * rand[1])
    width = torch.sqrt(area * ratio).clamp(max=1.0)  # fractions of the image's side
    height = torch.sqrt(area / ratio).clamp(max=1.0)
    centre_x = (rand[2] * 2 - 1) * (1 - width)
    centre_y = (rand[3] * 2 - 1) * (1 - height)
    sign = torch.ones(b, device=x.device)
    if flip:
        mirrored = torch.rand(b, generator=generator, device=x.device) < 0.5
        sign = torch.where(mirrored, -sign, sign)
    theta = torch.zeros(b, 2, 3, device=x.device)
    theta[:, 0, 0] = width * sign
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = height
    theta[:, 1, 2] = centre_y
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def colour_jitter(x: torch.Tensor, generator: torch.Generator, top: float = 255.0) -> torch.Tensor:
    """Brightness, contrast and saturation factors in [1 − J, 1 + J], one set per image.

    Contrast blends with each image's mean grey, saturation with its own grey image
    (torchvision's definitions). Values stay within [0, top].
    """
    b = len(x)
    factors = 1 + JITTER * (torch.rand(3, b, 1, 1, 1, generator=generator, device=x.device) * 2 - 1)
    weights = torch.tensor(GREY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    x = (x * factors[0]).clamp_(0, top)
    grey_mean = (x * weights).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    x = ((x - grey_mean) * factors[1] + grey_mean).clamp_(0, top)
    grey = (x * weights).sum(1, keepdim=True)
    return ((x - grey) * factors[2] + grey).clamp_(0, top)


def mix(
    x: torch.Tensor,
    targets: torch.Tensor,
    num_classes: int,
    mixup_alpha: float,
    cutmix_alpha: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """MixUp or CutMix of a batch with its neighbour: (images, soft targets (B, K) float).

    λ ~ Beta(α, α); MixUp blends whole images, CutMix pastes a box of area (1 − λ) and then
    sets λ to the share of pixels actually kept (the box is clipped at the border).
    """
    one_hot = F.one_hot(targets, num_classes).to(x.dtype)
    use_cutmix = cutmix_alpha > 0 and (
        mixup_alpha <= 0 or bool(torch.rand(1, generator=generator) < 0.5)
    )
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    gammas = torch._standard_gamma(
        torch.tensor([alpha, alpha], dtype=torch.float64), generator=generator
    )
    lam = float(gammas[0] / gammas.sum()) if float(gammas.sum()) > 0 else 1.0
    partner = x.roll(1, dims=0)
    if use_cutmix:
        h, w = x.shape[-2:]
        cut = math.sqrt(1.0 - lam)
        cy, cx = (torch.rand(2, generator=generator) * torch.tensor([h, w])).tolist()
        top, bottom = int(max(0, cy - cut * h / 2)), int(min(h, cy + cut * h / 2))
        left, right = int(max(0, cx - cut * w / 2)), int(min(w, cx + cut * w / 2))
        x = x.clone()
        x[:, :, top:bottom, left:right] = partner[:, :, top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (h * w)
    else:
        x = x * lam + partner * (1.0 - lam)
    return x, one_hot * lam + one_hot.roll(1, dims=0) * (1.0 - lam)


class Augmenter:
    """Turns uint8 batches into normalised float batches for training and evaluation.

    `mean`/`std` are per channel on the 0..1 scale; `channels_last` lays the output out as
    NHWC (faster convolutions on CUDA). Draws come from `generator` (on the data's device) and
    `mix_generator` (CPU); their states are what a checkpoint saves to resume exactly.
    """

    def __init__(
        self,
        preset: str,
        *,
        hflip: bool,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        device: torch.device,
        generator: torch.Generator,
        mix_generator: torch.Generator,
        num_classes: int,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        channels_last: bool = False,
    ) -> None:
        if preset not in ("none", "standard", "strong"):
            raise ValueError(f"augment: unknown preset {preset}")
        self.preset = preset
        self.hflip = hflip
        std_t = torch.tensor(std, device=device, dtype=torch.float32).view(1, -1, 1, 1)
        mean_t = torch.tensor(mean, device=device, dtype=torch.float32).view(1, -1, 1, 1)
        self.scale = 1.0 / (255.0 * std_t)  # x_norm = x_uint8 · scale + shift
        self.shift = -mean_t / std_t
        self.generator = generator
        self.mix_generator = mix_generator
        self.num_classes = num_classes
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    @property
    def mixes(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or 0..255 float) (B, 3, H, W) → normalised float32, in the chosen layout."""
        x = images.to(torch.float32).mul_(self.scale).add_(self.shift)
        return x.contiguous(memory_format=self.memory_format)

    def train_batch(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised augmented images, targets): class indices (B,), or (B, K) soft targets."""
        x = images.to(torch.float32)
        g = self.generator
        if self.preset == "standard":
            if self.hflip:
                x = random_flip(x, g)
            x = random_translate(x, max(1, round(x.shape[-1] * TRANSLATE_FRACTION)), g)
        elif self.preset == "strong":
            x = random_resized_crop_flip(x, g, flip=self.hflip)
            x = colour_jitter(x, g)
        x = self.normalize(x)
        if not self.mixes:
            return x, labels
        x, soft = mix(
            x, labels, self.num_classes, self.mixup_alpha, self.cutmix_alpha, self.mix_generator
        )
        return x.contiguous(memory_format=self.memory_format), soft
