"""Losses: cross-entropy, class-weighted cross-entropy and focal loss, with label smoothing.

Each takes logits (B, K) and targets that are class indices (B,) int64 or, after MixUp or
CutMix, probabilities (B, K), and returns the batch mean as a float32 scalar. Logits are cast
to float32 first, so the loss is computed at full precision under autocast.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def balanced_weights(counts: Sequence[int]) -> torch.Tensor:
    """w_c = N / (K · n_c): scikit-learn's "balanced" class weights (0 for an absent class)."""
    n = torch.tensor(counts, dtype=torch.float32)
    weights = n.sum() / (len(n) * n.clamp_min(1))
    return torch.where(n > 0, weights, torch.zeros_like(weights))


def smooth(targets: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """Probabilities (B, K): one-hot (or given soft) targets · (1 − ε) + ε / K."""
    if targets.dtype == torch.int64:
        targets = F.one_hot(targets, num_classes).float()
    return targets * (1.0 - smoothing) + smoothing / num_classes


class FocalLoss(nn.Module):
    """FL = −Σ_k α_k · t_k · (1 − p_k)^γ · log p_k, averaged over the batch.

    Lin et al. (2017), "Focal Loss for Dense Object Detection", in its softmax form: t is the
    (smoothed, possibly mixed) target distribution, p the softmax. α_k = 1 − a + a · w_k blends
    no weighting (a = 0) with the balanced class weights w (a = 1). With γ = 0 and a = 0 this
    is cross-entropy.
    """

    def __init__(self, gamma: float, alpha: torch.Tensor, smoothing: float = 0.0) -> None:
        super().__init__()
        self.gamma = gamma
        self.smoothing = smoothing
        self.register_buffer("alpha", alpha.float())

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        log_p = F.log_softmax(logits.float(), dim=1)
        t = smooth(targets, logits.shape[1], self.smoothing)
        focus = (1.0 - log_p.exp()).clamp_min(0.0).pow(self.gamma)
        alpha: torch.Tensor = self.alpha  # type: ignore[assignment]
        return -(alpha * t * focus * log_p).sum(dim=1).mean()


class CrossEntropy(nn.Module):
    """torch's cross-entropy on float32 logits; class weights optional (weighted CE).

    With index targets and weights the mean is Σ w_y · ℓ / Σ w_y (torch's definition); with
    probability targets it is the plain batch mean of Σ_k w_k t_k (−log p_k).
    """

    def __init__(self, weight: torch.Tensor | None = None, smoothing: float = 0.0) -> None:
        super().__init__()
        self.smoothing = smoothing
        self.register_buffer("weight", weight.float() if weight is not None else None)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight: torch.Tensor | None = self.weight  # type: ignore[assignment]
        return F.cross_entropy(
            logits.float(), targets, weight=weight, label_smoothing=self.smoothing
        )


def build_loss(
    kind: str,
    train_counts: Sequence[int],
    *,
    label_smoothing: float = 0.0,
    focal_gamma: float = 2.0,
    focal_alpha: float = 0.0,
) -> nn.Module:
    """The config's loss; weights come from the training split's class counts."""
    if kind == "ce":
        return CrossEntropy(smoothing=label_smoothing)
    weights = balanced_weights(train_counts)
    if kind == "weighted_ce":
        return CrossEntropy(weights, smoothing=label_smoothing)
    if kind == "focal":
        alpha = 1.0 - focal_alpha + focal_alpha * weights
        return FocalLoss(focal_gamma, alpha, smoothing=label_smoothing)
    raise ValueError(f"loss: unknown loss {kind}")
