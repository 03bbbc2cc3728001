"""The verdict protocol every preset follows: paired seeds, noise measured, a sanity gate first.

An experiment runs each arm over the same seeds (seed i sets both the model's `seed` and the
data's `data_seed`, so arm A and arm B of seed i see the same training and validation images).
A comparison of an arm with its baseline is made seed by seed:

    d_i = sign · (value(arm, seed i) − value(baseline, seed i))      (sign: the claimed direction)

and reads as follows (Bouthillier et al., "Accounting for Variance in Machine Learning
Benchmarks", MLSys 2021, for why several seeds; Dietterich, Neural Computation 1998, for the
paired test on one validation set):

- **noise across seeds**: the half-width of the 95 % t interval of the mean paired difference,
  t(0.975, n − 1) · sd(d) / √n;
- **noise on the same validation images**: for accuracy and recall, McNemar's exact test on
  the images exactly one of the two models got right, counts pooled over the seeds, with the
  paired-proportions interval; for macro-F1, a paired bootstrap over the images (the same
  resampled images for both arms, averaged over the seeds);
- **shown** when d_i > 0 in every seed, mean(d) > the stated margin, mean(d) beats the noise
  (the seeds' half-width, or the paired interval on the same images lies above the margin),
  and (where it applies) McNemar's p < 0.05;
- **not shown** when the data speak against the claim: the mean difference is on the wrong side
  by more than the seed noise (the whole interval below zero), or it is below the margin with
  the interval's upper end below the margin too;
- **inconclusive** otherwise, with the numbers.

A non-inferiority claim ("as accurate as") is shown when the interval's lower end lies above
−margin (and the paired test, where it applies, does not find the arm worse), or when no seed is
worse by the margin and the paired 95 % interval on the same images lies above −margin; not
shown when its
upper end lies below −margin, or when every seed is worse by more than the margin and McNemar's
test finds the arm worse on the same images; inconclusive between.

The sanity gate comes before any of it: an arm the claim depends on that did not learn
(validation accuracy near chance, a loss that is not finite or did not fall) makes the verdict
"inconclusive: <arm> did not learn". Nothing here knows about runs or the web: it takes numbers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

SHOWN, NOT_SHOWN, INCONCLUSIVE, PENDING = "shown", "not shown", "inconclusive", "pending"
ALPHA = 0.05  # two-sided level of the paired tests
# An arm "learned" when its mean validation accuracy is this far above chance (1 / classes).
LEARNED_ABOVE_CHANCE = 0.15

# t(0.975, df) for df = 1..30 (two-sided 95 %); beyond 30 the normal quantile is close enough.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_quantile(df: int) -> float:
    """t(0.975, df), the two-sided 95 % Student quantile (df ≥ 1); 1.96 past 30."""
    if df < 1:
        raise ValueError(f"df: expected at least 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (b, c ≥ 0).

    Under the null each discordant image is equally likely to favour either model, so
    min(b, c) ~ Binomial(b + c, ½); p = min(1, 2 · P(X ≤ min(b, c))). 1.0 when b + c = 0.
    """
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Paired:
    """Per-image correctness of two models on the same images: discordant counts.

    `b`: images the arm got right and the baseline wrong; `c`: the other way round; `n`: the
    images compared (0 when unknown).
    """

    b: int
    c: int
    n: int = 0

    @property
    def p(self) -> float:
        return mcnemar_p(self.b, self.c)

    def interval(self) -> tuple[float, float]:
        """95 % interval of the accuracy difference (arm − baseline) on these images.

        The paired-proportions (Wald) interval: d = (b − c) / n, var = (b + c − (b − c)² / n) / n²
        (Agresti, "Categorical Data Analysis", 3rd ed., §11.1). (NaN, NaN) without `n`.
        """
        if self.n <= 0:
            return math.nan, math.nan
        d = (self.b - self.c) / self.n
        var = max(0.0, (self.b + self.c - (self.b - self.c) ** 2 / self.n)) / self.n**2
        half = 1.96 * math.sqrt(var)
        return d - half, d + half


@dataclass(frozen=True)
class Comparison:
    """One arm against its baseline over paired seeds, in the claim's direction."""

    arm: str
    baseline: str
    metric: str  # what was compared, in words ("validation accuracy")
    arm_values: tuple[float, ...]
    baseline_values: tuple[float, ...]
    sign: int  # +1: the claim says the arm is higher; −1: lower
    margin: float  # smallest difference the claim counts, in the metric's units
    noninferior: bool = False  # the claim is "no worse than": compare with −margin
    paired: Paired | None = None  # McNemar counts on the same images, where they apply
    percent: bool = True  # the metric is a share (shown in points)
    # A 95 % paired bootstrap interval of (arm − baseline) over the same validation images,
    # where the metric is not a simple share (macro-F1); None where it does not apply.
    bootstrap: tuple[float, float] | None = None

    @property
    def diffs(self) -> tuple[float, ...]:
        """sign · (arm − baseline) per seed: positive favours the claim."""
        return tuple(
            self.sign * (a - b) for a, b in zip(self.arm_values, self.baseline_values, strict=True)
        )

    @property
    def mean(self) -> float:
        return statistics.fmean(self.diffs) if self.diffs else math.nan

    @property
    def noise(self) -> float:
        """Half-width of the 95 % t interval of the mean paired difference (NaN with < 2 seeds)."""
        d = self.diffs
        if len(d) < 2:
            return math.nan
        return t_quantile(len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))

    @property
    def outcome(self) -> str:
        """SHOWN, NOT_SHOWN or INCONCLUSIVE by the rules in the module's docstring."""
        d = self.diffs
        if not d or any(math.isnan(x) for x in d):
            return INCONCLUSIVE
        mean, noise = self.mean, self.noise
        if math.isnan(noise):
            return INCONCLUSIVE
        low, high = mean - noise, mean + noise
        if self.noninferior:
            if low > -self.margin and (self.paired is None or not self._paired_against()):
                return SHOWN
            # Three seeds make a wide t interval; no seed worse than the margin, and the paired
            # interval on the same images (thousands of them) above −margin, say it as well.
            if all(x > -self.margin for x in d) and self._paired_low() > -self.margin:
                return SHOWN
            if high < -self.margin:
                return NOT_SHOWN
            # Every seed worse by more than the margin and the paired test rejects equality
            # on the same images: the data speak against "no worse" even with few seeds.
            if all(x < -self.margin for x in d) and self._paired_against():
                return NOT_SHOWN
            return INCONCLUSIVE
        test_ok = self.paired is None or self.paired.p < ALPHA
        # The noise is measured twice: across the seeds (the t interval) and on the same
        # validation images (the paired interval); beating either, with every seed agreeing
        # and the paired test rejecting, is shown. Three seeds alone give t(0.975, 2) = 4.3.
        beats_noise = mean > noise or self._paired_low() > self.margin
        if all(x > 0 for x in d) and mean > self.margin and beats_noise and test_ok:
            return SHOWN
        if high < 0 or high < self.margin:
            return NOT_SHOWN
        return INCONCLUSIVE

    def _paired_low(self) -> float:
        """Low end of the paired images' interval in the claim's direction (NaN without)."""
        if self.bootstrap is not None:
            low, high = self.bootstrap
        elif self.paired is not None:
            low, high = self.paired.interval()
        else:
            return math.nan
        return low if self.sign > 0 else -high

    def _paired_against(self) -> bool:
        """McNemar rejects equality and the baseline won more of the discordant images."""
        return self.paired is not None and self.paired.p < ALPHA and self.paired.c > self.paired.b

    def describe(self) -> str:
        """One sentence with every number: per seed, mean ± noise, margin, the paired test."""
        unit = " points" if self.percent else ""
        scale = 100 if self.percent else 1
        digits = ".1f" if self.percent else ".3g"
        per_seed = ", ".join(_signed(x * scale, digits) for x in self.diffs)
        text = (
            f"{self.arm} − {self.baseline}, {self.metric}"
            f"{'' if self.sign > 0 else ' (lower is better: sign flipped)'}: "
            f"per seed {per_seed}{unit}; mean {_signed(self.mean * scale, digits)} ± "
            f"{self.noise * scale:.2g}{unit} (95 % interval over {len(self.diffs)} seeds); "
            f"margin {'−' if self.noninferior else ''}{self.margin * scale:.3g}{unit}"
        )
        if self.paired is not None:
            text += (
                f"; McNemar on the same images: {self.paired.b} vs {self.paired.c} "
                f"discordant, p = {self.paired.p:.2g}"
            )
            low, high = self.paired.interval()
            if not math.isnan(low):
                text += (
                    f", difference on those {self.paired.n:,} images {low * scale:+.1f} to "
                    f"{high * scale:+.1f}{unit}"
                )
        if self.bootstrap is not None:
            low, high = self.bootstrap
            text += (
                f"; paired bootstrap over the same images: {low * scale:+.1f} to "
                f"{high * scale:+.1f}{unit}"
            )
        return text + f" → {self.outcome}."

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "baseline": self.baseline,
            "metric": self.metric,
            "arm_values": list(self.arm_values),
            "baseline_values": list(self.baseline_values),
            "diffs": list(self.diffs),
            "mean": _finite(self.mean),
            "noise": _finite(self.noise),
            "margin": self.margin,
            "noninferior": self.noninferior,
            "mcnemar": None
            if self.paired is None
            else {"b": self.paired.b, "c": self.paired.c, "n": self.paired.n, "p": self.paired.p},
            "bootstrap": None if self.bootstrap is None else list(self.bootstrap),
            "outcome": self.outcome,
        }


def _signed(value: float, digits: str = ".1f") -> str:
    return "n/a" if math.isnan(value) else f"{value:+{digits}}"


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class Gate:
    """Did an arm learn? Validation accuracy above chance, losses finite and falling."""

    arm: str
    learned: bool
    why: str  # empty when it learned


def sanity_gate(
    arm: str,
    val_accuracy: Sequence[float],
    first_loss: Sequence[float],
    last_loss: Sequence[float],
    classes: int,
    *,
    above_chance: float = LEARNED_ABOVE_CHANCE,
) -> Gate:
    """The gate for one arm over its seeds (same length sequences, one value per seed).

    Did not learn: any loss not finite, the last epoch's training loss not below the first's in
    some seed, or the mean validation accuracy below chance (1 / classes) + `above_chance`.
    """
    chance = 1 / max(1, classes)
    if any(not math.isfinite(x) for x in (*first_loss, *last_loss)):
        return Gate(arm, False, "its loss was not finite")
    if any(last >= first for first, last in zip(first_loss, last_loss, strict=True)):
        return Gate(arm, False, "its training loss did not fall in every seed")
    mean = statistics.fmean(val_accuracy) if val_accuracy else math.nan
    if math.isnan(mean) or mean < chance + above_chance:
        return Gate(
            arm,
            False,
            f"its validation accuracy ({mean * 100:.1f} %) is within "
            f"{above_chance * 100:.0f} points of chance ({chance * 100:.0f} %)",
        )
    return Gate(arm, True, "")


@dataclass
class Verdict:
    """What an experiment showed: its outcome, one summary line, and the evidence under it."""

    outcome: str  # SHOWN | NOT_SHOWN | INCONCLUSIVE | PENDING
    summary: str
    comparisons: list[Comparison] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how to read it; what it cannot show

    @property
    def shown(self) -> bool | None:
        """True when shown, False when not shown, None otherwise (the API's old field)."""
        return {SHOWN: True, NOT_SHOWN: False}.get(self.outcome)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "shown": self.shown,
            "summary": self.summary,
            "comparisons": [c.to_dict() for c in self.comparisons],
            "evidence": [c.describe() for c in self.comparisons],
            "notes": list(self.notes),
        }


def gated(gates: Sequence[Gate]) -> Verdict | None:
    """An inconclusive verdict naming the arms that did not learn, or None when all did."""
    failed = [g for g in gates if not g.learned]
    if not failed:
        return None
    names = "; ".join(f"{g.arm} did not learn ({g.why})" for g in failed)
    return Verdict(INCONCLUSIVE, f"Inconclusive: {names}. Nothing can be read from it.")


def combine(comparisons: Sequence[Comparison], *, every: bool = True) -> str:
    """The outcome of several comparisons: with `every`, SHOWN only when all are shown, NOT_SHOWN
    when any is; without, SHOWN when any is (each reported on its own), NOT_SHOWN when all are."""
    outcomes = [c.outcome for c in comparisons]
    if not outcomes:
        return INCONCLUSIVE
    if every:
        if all(o == SHOWN for o in outcomes):
            return SHOWN
        return NOT_SHOWN if NOT_SHOWN in outcomes else INCONCLUSIVE
    if SHOWN in outcomes:
        return SHOWN
    return NOT_SHOWN if all(o == NOT_SHOWN for o in outcomes) else INCONCLUSIVE


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation) of per-seed values; spread NaN with one value."""
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return math.nan, math.nan
    spread = statistics.stdev(clean) if len(clean) > 1 else math.nan
    return statistics.fmean(clean), spread
