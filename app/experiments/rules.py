"""How each preset reads its runs into a verdict, by the protocol of `verdict.py`.

Each rule takes the experiment's `Evidence` (every arm's run per seed, all succeeded) and
returns a `Verdict`: first the sanity gate on the arms the claim depends on, then each arm
compared with its baseline seed by seed, never the best of several against one baseline.
Margins are fixed here once, from what the claim says, and never tuned to a result.

Figures: `metrics` is a run's last validation report (val_accuracy, macro_f1, per_class with
precision and recall, val_size, model.parameters, ...); `history` holds one entry per epoch
(train_loss, train_eval_loss and train_eval_accuracy with eval_train, grad_norms per layer
group, images_per_s, seconds).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from app.experiments.verdict import (
    INCONCLUSIVE,
    NOT_SHOWN,
    SHOWN,
    Comparison,
    Gate,
    Paired,
    Verdict,
    combine,
    gated,
    sanity_gate,
)

ACCURACY_MARGIN = 0.03  # 3 points: a smaller difference in accuracy or recall is not claimed
F1_MARGIN = 0.01
NONINFERIOR_MARGIN = 0.03  # "as accurate as": the interval's low end above −3 points
AUGMENT_VAL_MARGIN = 0.02  # "does not lower validation accuracy": low end above −2 points
LOSS_MARGIN = 0.02  # training loss, nats
SPEED_MARGIN = math.log(1.2)  # a data path "faster" by at least 1.2× in images/s
TIE_MARGIN = math.log(1.25)  # "about the same speed": within 1.25× either way
LR_MARGIN = 0.4  # log10 units: most of one step of the √10 sweep


class RunLike(Protocol):
    """What a rule reads of a run (app.models.Run has it)."""

    id: int | None
    status: str
    config: dict[str, Any]
    metrics: dict[str, Any] | None
    history: list[Any]
    error: str | None


Predictions = Callable[[int], "tuple[np.ndarray, np.ndarray] | None"]


def logs(values: tuple[float, ...], log: Callable[[float], float] = math.log) -> tuple[float, ...]:
    """`log` of each value (natural by default); NaN for a value that is not positive."""
    return tuple(log(v) if v > 0 else math.nan for v in values)


@dataclass
class Evidence:
    """The finished runs of one experiment, by arm and seed, and how to read their files.

    `runs[(arm, seed)]` is the run of that cell (seed None for a `once` arm). `predictions`
    gives (y_true, y_pred) int arrays of a run's last validation pass, or None when its file
    is gone; the paired tests need it, the rest does not.
    """

    labels: dict[str, str]  # arm key → label
    seeds: int
    runs: dict[tuple[str, int | None], RunLike]
    predictions: Predictions

    def label(self, arm: str) -> str:
        return self.labels[arm]

    def per_seed(self, arm: str, read: Callable[[RunLike], float]) -> tuple[float, ...]:
        """read(run) for the arm's run of each seed, in seed order."""
        return tuple(read(self.runs[(arm, seed)]) for seed in range(self.seeds))

    def metric(self, arm: str, key: str) -> tuple[float, ...]:
        return self.per_seed(arm, lambda run: metric(run, key))

    def compare(
        self,
        arm: str,
        baseline: str,
        what: str,
        values: Mapping[str, tuple[float, ...]] | Callable[[str], tuple[float, ...]],
        **claim: Any,
    ) -> Comparison:
        """`arm` against `baseline` on `what` (words for the page), each arm's per-seed values
        from `values` (a mapping or a function of the arm); `claim` holds Comparison's sign,
        margin and the rest."""
        read = values if callable(values) else values.__getitem__
        return Comparison(
            self.label(arm), self.label(baseline), what, read(arm), read(baseline), **claim
        )

    def classes(self) -> int:
        run = next(iter(self.runs.values()))
        return len((run.metrics or {}).get("classes") or []) or 2

    def gate(self, arm: str) -> Gate:
        """The sanity gate of one arm over its seeds."""
        return sanity_gate(
            self.label(arm),
            self.metric(arm, "val_accuracy"),
            self.per_seed(arm, lambda run: epoch_value(run, "train_loss", first=True)),
            self.per_seed(arm, lambda run: epoch_value(run, "train_loss")),
            self.classes(),
        )

    def paired(self, arm: str, base: str, label: int | None = None) -> Paired | None:
        """McNemar's counts of `arm` against `base` on the same validation images, pooled over
        the seeds (only the images of class `label` when given); None if a file is missing."""
        b = c = n = 0
        for seed in range(self.seeds):
            mine = self._correct(self.runs[(arm, seed)], label)
            theirs = self._correct(self.runs[(base, seed)], label)
            if mine is None or theirs is None or mine.shape != theirs.shape:
                return None
            b += int(np.sum(mine & ~theirs))
            c += int(np.sum(~mine & theirs))
            n += len(mine)
        return Paired(b, c, n)

    def f1_bootstrap(self, arm: str, base: str, draws: int = 1000) -> tuple[float, float] | None:
        """95 % paired bootstrap interval of macro-F1(arm) − macro-F1(base), the mean over the
        seeds, resampling each seed's validation images (the same draw for both arms); None
        when a predictions file is missing. Macro-F1 as scikit-learn's f1_score(average=
        "macro", labels=all classes, zero_division=0). Seeded: the same runs give the same
        interval (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993, §13)."""
        classes = self.classes()
        rng = np.random.default_rng(0)
        total = np.zeros(draws)
        for seed in range(self.seeds):
            mine = self._pairs(self.runs[(arm, seed)])
            theirs = self._pairs(self.runs[(base, seed)])
            if mine is None or theirs is None or len(mine[0]) != len(theirs[0]):
                return None
            index = rng.integers(0, len(mine[0]), size=(draws, len(mine[0])))
            total += _macro_f1(mine[0][index], mine[1][index], classes)
            total -= _macro_f1(theirs[0][index], theirs[1][index], classes)
        total /= self.seeds
        return float(np.percentile(total, 2.5)), float(np.percentile(total, 97.5))

    def _pairs(self, run: RunLike) -> tuple[np.ndarray, np.ndarray] | None:
        return None if run.id is None else self.predictions(run.id)

    def _correct(self, run: RunLike, label: int | None) -> np.ndarray | None:
        if run.id is None:
            return None
        found = self.predictions(run.id)
        if found is None:
            return None
        y_true, y_pred = found
        right = y_true == y_pred
        return right[y_true == label] if label is not None else right


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """Macro-F1 of each row: (B, N) int labels → (B,) float, every class counted (0 when a
    class is absent from both rows, as scikit-learn's zero_division=0)."""
    rows = np.arange(len(y_true))[:, None] * classes * classes
    cells = np.bincount(
        (rows + y_true * classes + y_pred).ravel(), minlength=len(y_true) * classes * classes
    ).reshape(len(y_true), classes, classes)
    tp = np.diagonal(cells, axis1=1, axis2=2).astype(float)
    fp = cells.sum(axis=1) - tp
    fn = cells.sum(axis=2) - tp
    denominator = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return f1.mean(axis=1)


def metric(run: RunLike, key: str) -> float:
    """A top-level figure of metrics.json (NaN when absent)."""
    value = (run.metrics or {}).get(key)
    return float(value) if isinstance(value, int | float) else math.nan


def epoch_value(run: RunLike, key: str, *, first: bool = False) -> float:
    """`key` of the last (or first) epoch that has it (NaN when none has)."""
    entries = [h for h in run.history or [] if isinstance(h, dict)]
    for entry in entries if first else reversed(entries):
        if isinstance(entry.get(key), int | float):
            return float(entry[key])
    return math.nan


def class_figure(run: RunLike, index: int, key: str) -> float:
    """precision / recall / f1 of class `index` from the last report (NaN when absent)."""
    per_class = (run.metrics or {}).get("per_class") or []
    try:
        return float(per_class[index][key])
    except (IndexError, KeyError, TypeError, ValueError):
        return math.nan


def mean_images_per_s(run: RunLike) -> float:
    """Training images per second over the whole run (metrics' images_per_s)."""
    return metric(run, "images_per_s")


def grad_ratio(run: RunLike) -> float:
    """The stem's gradient norm over the head's in the last epoch: the share of the gradient
    that reaches the first layer, comparable between nets whatever their activations' scale."""
    norms = {}
    for entry in reversed(run.history or []):
        if isinstance(entry, dict) and isinstance(entry.get("grad_norms"), dict):
            norms = entry["grad_norms"]
            break
    stem, head = norms.get("stem"), norms.get("head")
    if not isinstance(stem, int | float) or not isinstance(head, int | float) or head <= 0:
        return math.nan
    return float(stem) / float(head)


def _verdict(outcome: str, held: str, comparisons: list[Comparison], notes: list[str]) -> Verdict:
    lead = {SHOWN: "Shown", NOT_SHOWN: "Not shown", INCONCLUSIVE: "Inconclusive"}[outcome]
    return Verdict(outcome, f"{lead}: {held}", comparisons, notes)


# ---------------------------------------------------------------- the rules


def batchnorm(ev: Evidence) -> Verdict:
    """Per seed, the largest swept rate at which each net trains; BN's higher in every seed.

    'Trains' = final validation accuracy at least 15 points above chance and finite losses.
    The comparison is on log10 of the rate (a step of the sweep is 0.5).
    """
    series: dict[str, list[tuple[float, str]]] = {}
    for key in ev.labels:
        name, _, lr = key.partition("@")
        series.setdefault(name, []).append((float(lr), key))
    chance = 1 / ev.classes()

    def trains(run: RunLike) -> bool:
        acc = metric(run, "val_accuracy")
        loss = metric(run, "val_loss")
        return math.isfinite(loss) and acc >= chance + 0.15

    limits: dict[str, list[float]] = {}
    best: dict[str, list[float]] = {}
    for name, points in series.items():
        limits[name] = []
        best[name] = []
        for seed in range(ev.seeds):
            ok = [lr for lr, key in points if trains(ev.runs[(key, seed)])]
            limits[name].append(math.log10(max(ok)) if ok else math.nan)
            best[name].append(
                max(metric(ev.runs[(key, seed)], "val_accuracy") for _, key in points)
            )
    dead = [name for name in ("bn", "plain") if any(math.isnan(v) for v in limits[name])]
    if dead:
        names = " and ".join(
            "the net with batch norm" if n == "bn" else "the plain net" for n in dead
        )
        return Verdict(
            INCONCLUSIVE,
            f"Inconclusive: {names} did not train at any rate of the sweep in every seed, so no "
            "learning-rate limit can be compared.",
        )
    compared = Comparison(
        "batch norm",
        "no batch norm",
        "largest learning rate that trains (log10)",
        tuple(limits["bn"]),
        tuple(limits["plain"]),
        sign=1,
        margin=LR_MARGIN,
        percent=False,
    )
    top = max(lr for lr, _ in series["bn"])
    notes = [
        "Largest rate that trains, per seed: batch norm "
        + ", ".join(f"{10**v:.3g}" for v in limits["bn"])
        + "; no batch norm "
        + ", ".join(f"{10**v:.3g}" for v in limits["plain"])
        + ".",
        "Best validation accuracy over the sweep, per seed: batch norm "
        + ", ".join(f"{v * 100:.1f} %" for v in best["bn"])
        + "; no batch norm "
        + ", ".join(f"{v * 100:.1f} %" for v in best["plain"])
        + ".",
    ]
    if any(v >= math.log10(top) for v in limits["bn"]):
        notes.append(
            f"Batch norm still trained at the sweep's largest rate ({top:g}): its limit lies "
            "beyond the sweep, so the difference is at least what is shown."
        )
    outcome = compared.outcome
    held = {
        SHOWN: "the net with batch norm trained at larger learning rates than the same net "
        "without it, in every seed.",
        NOT_SHOWN: "the net with batch norm did not train at clearly larger rates here.",
        INCONCLUSIVE: "the learning-rate limits differ too little, or too unevenly across the "
        "seeds, to say.",
    }[outcome]
    return _verdict(outcome, held, [compared], notes)


def residual(ev: Evidence) -> Verdict:
    """Degradation (deep plain's training loss above shallow plain's) and its repair (deep
    residual's below deep plain's), both on the un-augmented training images, every seed."""
    verdict = gated([ev.gate("shallow"), ev.gate("residual")])
    if verdict is not None:
        return verdict
    loss = {arm: ev.per_seed(arm, lambda r: epoch_value(r, "train_eval_loss")) for arm in ev.labels}
    degradation = ev.compare(
        "deep",
        "shallow",
        "training loss",
        loss,
        sign=1,
        margin=LOSS_MARGIN,
        percent=False,
    )
    repair = ev.compare(
        "residual",
        "deep",
        "training loss",
        loss,
        sign=-1,
        margin=LOSS_MARGIN,
        percent=False,
    )
    flow = ev.compare(
        "residual",
        "deep",
        "stem/head gradient-norm ratio (log10)",
        lambda arm: logs(ev.per_seed(arm, grad_ratio), math.log10),
        sign=1,
        margin=0.0,
        percent=False,
    )
    outcome = combine([degradation, repair])
    held = {
        SHOWN: "the deep plain net ended with a higher training loss than the shallow one, and "
        "the same deep net with skips trained to a lower loss than the deep plain one.",
        NOT_SHOWN: "at this size the deep plain net did not end worse than the shallow one, or "
        "the skips did not lower its training loss.",
        INCONCLUSIVE: "the differences in training loss are within the seeds' noise.",
    }[outcome]
    notes = [
        "Also measured (not part of the verdict): the stem's share of the gradient, "
        + flow.describe(),
        "Both nets have batch norm, so this is He et al.'s degradation problem (optimisation), "
        "not a vanishing gradient.",
    ]
    return _verdict(outcome, held, [degradation, repair], notes)


def pooling(ev: Evidence) -> Verdict:
    """All-CNN non-inferior to max pooling and to average pooling, each on its own."""
    verdict = gated([ev.gate(arm) for arm in ("maxpool", "avgpool", "allcnn")])
    if verdict is not None:
        return verdict
    acc = {arm: ev.metric(arm, "val_accuracy") for arm in ev.labels}

    def no_worse(arm: str, pool: str) -> Comparison:
        return ev.compare(
            arm,
            pool,
            "validation accuracy",
            acc,
            sign=1,
            margin=NONINFERIOR_MARGIN,
            noninferior=True,
            paired=ev.paired(arm, pool),
        )

    comparisons = [no_worse("allcnn", pool) for pool in ("maxpool", "avgpool")]
    strided = [no_worse("strided", pool) for pool in ("maxpool", "avgpool")]
    outcome = combine(comparisons)
    held = {
        SHOWN: "All-CNN was as accurate as max pooling and as average pooling (each paired "
        "difference's interval above −3 points).",
        NOT_SHOWN: "All-CNN fell clearly below a pooling net here.",
        INCONCLUSIVE: "the seeds' noise is too wide to tell whether All-CNN matches both pools.",
    }[outcome]
    notes = [
        "Strided-CNN, for comparison (not part of the verdict): " + s.describe() for s in strided
    ]
    return _verdict(outcome, held, comparisons, notes)


def transfer(ev: Evidence) -> Verdict:
    """Frozen vs scratch and fine-tuned vs scratch, each on its own; cost beside."""
    pre = ev.runs.get(("pretrain", None))
    gates = [ev.gate("scratch"), ev.gate("frozen"), ev.gate("finetuned")]
    if pre is not None and metric(pre, "val_accuracy") < 1 / ev.classes() + 0.15:
        gates.append(Gate(ev.label("pretrain"), False, "its validation accuracy is near chance"))
    verdict = gated(gates)
    if verdict is not None:
        return verdict
    acc = {arm: ev.metric(arm, "val_accuracy") for arm in ("scratch", "frozen", "finetuned")}
    comparisons = [
        ev.compare(
            arm,
            "scratch",
            "validation accuracy",
            acc,
            sign=1,
            margin=ACCURACY_MARGIN,
            paired=ev.paired(arm, "scratch"),
        )
        for arm in ("frozen", "finetuned")
    ]
    outcome = combine(comparisons, every=False)
    held_by = [c.arm for c in comparisons if c.outcome == SHOWN]
    held = {
        SHOWN: f"{' and '.join(held_by)} beat training from scratch (each compared on its own).",
        NOT_SHOWN: "neither transfer arm beat training from scratch here.",
        INCONCLUSIVE: "neither transfer arm beat scratch beyond the seeds' noise.",
    }[outcome]
    cost = []
    for arm in ("scratch", "frozen", "finetuned"):
        run = ev.runs[(arm, 0)]
        trainable = ((run.metrics or {}).get("model") or {}).get("trainable_parameters")
        seconds = ev.per_seed(arm, lambda r: epoch_sum(r, "seconds"))
        cost.append(
            f"{ev.label(arm)}: {trainable:,} trainable parameters, "
            f"{sum(seconds) / len(seconds):.1f} s of training a run"
            if isinstance(trainable, int)
            else ev.label(arm)
        )
    notes = ["Cost: " + "; ".join(cost) + "."]
    if pre is not None:
        notes.append(
            f"The backbone is this experiment's run {pre.id} (shapes 0-4), validation accuracy "
            f"{metric(pre, 'val_accuracy') * 100:.1f} % on its own classes (not comparable)."
        )
    return _verdict(outcome, held, comparisons, notes)


def epoch_sum(run: RunLike, key: str) -> float:
    values = [h.get(key) for h in run.history or [] if isinstance(h, dict)]
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return sum(numbers) if numbers else math.nan


def imbalance(ev: Evidence) -> Verdict:
    """Each remedy against plain CE: rare-class recall and macro-F1 must both rise."""
    verdict = gated([ev.gate("ce")])
    if verdict is not None:
        return verdict
    rare = ev.classes() - 1
    recall = {a: ev.per_seed(a, lambda r: class_figure(r, rare, "recall")) for a in ev.labels}
    f1 = {a: ev.metric(a, "macro_f1") for a in ev.labels}
    comparisons, helped, notes = [], [], []
    for arm in ("weighted", "focal", "sampler"):
        by_recall = ev.compare(
            arm,
            "ce",
            "rare class's recall",
            recall,
            sign=1,
            margin=ACCURACY_MARGIN,
            paired=ev.paired(arm, "ce", label=rare),
        )
        by_f1 = ev.compare(
            arm,
            "ce",
            "macro-F1",
            f1,
            sign=1,
            margin=F1_MARGIN,
            bootstrap=ev.f1_bootstrap(arm, "ce"),
        )
        comparisons += [by_recall, by_f1]
        if by_recall.outcome == SHOWN and by_f1.outcome == SHOWN:
            helped.append(ev.label(arm))
        elif by_recall.outcome == SHOWN:
            notes.append(f"{ev.label(arm)} raised the rare class's recall but not the macro-F1.")
    for arm in ev.labels:
        precision = ev.per_seed(arm, lambda r: class_figure(r, rare, "precision"))
        notes.append(
            f"{ev.label(arm)}: rare class's precision per seed "
            + ", ".join(f"{v * 100:.1f} %" for v in precision)
            + ", recall "
            + ", ".join(f"{v * 100:.1f} %" for v in recall[arm])
            + "."
        )
    if helped:
        outcome = SHOWN
        held = f"{', '.join(helped)} raised both the rare class's recall and the macro-F1."
    elif all(c.outcome == NOT_SHOWN for c in comparisons[::2]):
        outcome = NOT_SHOWN
        held = "no remedy raised the rare class's recall over plain cross-entropy here."
    else:
        outcome = INCONCLUSIVE
        held = "no remedy raised both the rare class's recall and the macro-F1 beyond the noise."
    return _verdict(outcome, held, comparisons, notes)


def augmentation(ev: Evidence) -> Verdict:
    """Each augmentation against none: the gap narrows and validation accuracy does not fall."""
    verdict = gated([ev.gate("none")])
    if verdict is not None:
        return verdict

    def gap(run: RunLike) -> float:
        return epoch_value(run, "train_eval_accuracy") - metric(run, "val_accuracy")

    comparisons, held_by = [], []
    for arm in ("standard", "strong"):
        narrower = ev.compare(
            arm,
            "none",
            "train − validation gap",
            lambda arm: ev.per_seed(arm, gap),
            sign=-1,
            margin=ACCURACY_MARGIN,
        )
        kept = ev.compare(
            arm,
            "none",
            "validation accuracy",
            lambda arm: ev.metric(arm, "val_accuracy"),
            sign=1,
            margin=AUGMENT_VAL_MARGIN,
            noninferior=True,
            paired=ev.paired(arm, "none"),
        )
        comparisons += [narrower, kept]
        if narrower.outcome == SHOWN and kept.outcome == SHOWN:
            held_by.append(ev.label(arm))
    if held_by:
        outcome = SHOWN
        held = f"{' and '.join(held_by)} narrowed the gap without lowering validation accuracy."
    elif any(c.outcome == NOT_SHOWN for c in comparisons[1::2]) and all(
        c.outcome != SHOWN for c in comparisons[::2]
    ):
        outcome = NOT_SHOWN
        held = "no augmentation narrowed the gap while keeping the validation accuracy here."
    else:
        outcome = INCONCLUSIVE
        held = "no augmentation narrowed the gap and kept the validation accuracy beyond the noise."
    notes = [
        "A gap that narrows because the training accuracy fell, with the validation accuracy, "
        "is underfitting: such an arm does not count."
    ]
    return _verdict(outcome, held, comparisons, notes)


def training_loop(ev: Evidence) -> Verdict:
    """Data-bound pair: the engine faster by 1.2× or more; compute-bound pair: within 1.25×."""
    verdict = gated([ev.gate("tutorial-small"), ev.gate("engine-small")])
    if verdict is not None:
        return verdict

    def log_ips(arm: str) -> tuple[float, ...]:
        return logs(ev.per_seed(arm, mean_images_per_s))

    faster = ev.compare(
        "engine-small",
        "tutorial-small",
        "log images/s",
        log_ips,
        sign=1,
        margin=SPEED_MARGIN,
        percent=False,
    )
    tie = ev.compare(
        "engine-wide",
        "tutorial-wide",
        "log images/s",
        log_ips,
        sign=1,
        margin=TIE_MARGIN,
        noninferior=True,
        percent=False,
    )
    same_accuracy = ev.compare(
        "engine-small",
        "tutorial-small",
        "validation accuracy",
        lambda arm: ev.metric(arm, "val_accuracy"),
        sign=1,
        margin=0.05,
        noninferior=True,
    )
    ratios = [math.exp(d) for d in faster.diffs]
    wide = [math.exp(d) for d in tie.diffs]
    close = all(abs(d) < TIE_MARGIN for d in tie.diffs)  # every pair within 1.25× either way
    outcome = faster.outcome
    if outcome == SHOWN and not close:
        outcome = INCONCLUSIVE
    held = {
        SHOWN: "with the tiny CNN the engine trained "
        + ", ".join(f"{r:.2f}×" for r in ratios)
        + " the tutorial loop's images/s (per seed); with the wide CNN the two were within "
        "1.25× ("
        + ", ".join(f"{r:.2f}×" for r in wide)
        + "): there the model's compute, not the data path, sets the pace.",
        NOT_SHOWN: "the engine was not faster than the tutorial loop with the tiny CNN here.",
        INCONCLUSIVE: "the speed ratios ("
        + ", ".join(f"{r:.2f}×" for r in ratios)
        + " tiny, "
        + ", ".join(f"{r:.2f}×" for r in wide)
        + " wide) are too uneven to say both halves.",
    }[outcome]
    notes = [
        "Accuracy, for the 'same accuracy' half: " + same_accuracy.describe(),
        "Images/s is training throughput only (evaluation excluded); the tutorial loop's "
        "DataLoader has 2 worker processes, which on a 2-core CPU compete with training.",
    ]
    return _verdict(outcome, held, [faster, tie], notes)
