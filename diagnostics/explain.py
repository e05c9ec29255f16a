"""The explanation step: which findings are root causes and which follow from which cause.

The checks measure (each once, each on its own evidence); this module, and only this module,
holds what causes what, as data that reads in one screen, the way a differential diagnosis
goes from findings to the one cause that explains most of them. Three tables:

- ``PRECEDENCE``: the deeper cause first. A finding can only be explained by one that stands
  before it, so explanations never go round in a circle.
- ``EXPLAINS``: a cause and the symptoms it produces, each row with an optional condition.
  A symptom present beside its cause is shown beneath it, never above it.
- ``RULED_OUT_BY``: diagnoses of exclusion (low capacity, "learned nothing", a too-small
  learning rate, label-sorted batches, a plateau): each is only named when none of the
  findings that would otherwise explain the same evidence is present.

Adding a check is one function, one line in ``registry.CHECKS``, its place in ``PRECEDENCE``
and its rows here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from diagnostics.report import SEVERITIES, Finding

PRECEDENCE = (
    # the training program given the wrong thing to learn, or not learning at all
    "loss-target-mismatch", "output-range-mismatch", "optimizer-mismatch", "step-never-called",
    "no-gradient-path",
    "accumulated-gradient", "shrunk-gradient", "frozen-parameters", "unpredictable-targets", "single-class-output",
    # the data and the hyper-parameters
    "unscaled-data", "excessive-weight-decay", "decayed-learning-rate", "unstable-learning-rate",
    "low-capacity", "learning-rate-too-small", "bad-initialization", "generalization-gap",
    # what those do to the gradients and the units
    "exploding-gradient", "vanishing-gradient", "saturated-activation", "dead-relu",
    # what the run shows
    "non-finite", "constant-output", "loss-oscillation", "learned-nothing", "loss-plateau",
)

# groups of symptoms that many causes produce
STUCK = ("loss-plateau", "constant-output", "loss-oscillation")   # the run does not learn: its
                        # loss sits flat, or jumps around a level (a constant prediction's losses
                        # on one-row batches swing with the targets)
UNITS = ("dead-relu", "saturated-activation", "vanishing-gradient")  # units stop passing signal
BLOWUP = ("non-finite", "exploding-gradient", "loss-oscillation")    # steps overshoot


def always(cause: Finding, symptom: Finding) -> bool:
    return True


def grown_in_training(cause: Finding, symptom: Finding) -> bool:
    """bad-initialization only for the scale of weights the history shows were trained: a
    constant or one-sign init is a cause of its own, whatever the learning rate did."""
    ev = symptom.evidence
    return symptom.code != "bad-initialization" or (
        bool(ev.get("trained_steps")) and not ev.get("constant_layers") and not ev.get("one_sign")
        and not ev.get("wrong_at_step_0"))


def scale_of_outputs(cause: Finding, symptom: Finding) -> bool:
    """bad-initialization for any scale the inputs set, a first loss far too high included:
    unscaled inputs blow up what a sane init outputs. A constant or one-sign init is still a
    cause of its own."""
    ev = symptom.evidence
    return symptom.code != "bad-initialization" or (
        not ev.get("constant_layers") and not ev.get("one_sign"))


def trained(cause: Finding, symptom: Finding) -> bool:
    """bad-initialization of weights the history shows were trained: weight decay that outweighs
    the data pulls them to zero, and at lr x wd = 1 sets each to -lr x its gradient (constant or
    one-signed layers included). A penalty inside the logged loss also made its first value far
    too high (a watched run's step 0 included)."""
    return symptom.code != "bad-initialization" or bool(
        symptom.evidence.get("trained_steps") or cause.evidence.get("penalty_in_loss"))


def starts_inside(cause: Finding, symptom: Finding) -> bool:
    """Saturation that begins inside the stack, behind a first layer that passes its gradient:
    the inputs and the init reach the stack well, and its depth loses the signal."""
    return bool(symptom.evidence.get("starts_inside"))


def saturated_at_the_input(f: Finding) -> bool:
    return f.code != "saturated-activation" or not f.evidence.get("starts_inside")


def through_depth(f: Finding) -> bool:
    return bool(f.evidence.get("through_depth"))


def is_bottleneck(cause: Finding, symptom: Finding = None) -> bool:
    """low-capacity read off the architecture: a 1-unit layer, or fewer units than classes - 1."""
    return bool(cause.evidence.get("bottleneck"))


def is_strict_bottleneck(f: Finding) -> bool:
    """low-capacity from a layer that cannot carry the output, whatever the training: 1 unit,
    or fewer units than classes - 1."""
    return bool(f.evidence.get("strict_bottleneck"))


def init_of_its_own(f: Finding) -> bool:
    """bad-initialization that no training explains: constant or one-sign weights, or a loss
    far too high before the first update (not a weight scale read after training)."""
    ev = f.evidence
    return f.code != "bad-initialization" or bool(
        ev.get("constant_layers") or ev.get("one_sign") or ev.get("wrong_at_step_0"))


def init_explains(cause: Finding, symptom: Finding = None) -> bool:
    """An init judged only by its weights' sign, in a run whose history started sane, is a
    warning of its own: nothing shows it drove what came after (seed 002's all-positive init
    trains once the step is averaged). Constant weights, a scale far off or a start far too high
    explain what follows."""
    ev = cause.evidence
    only_sign = bool(ev.get("one_sign")) and not (
        ev.get("constant_layers") or ev.get("scale") or ev.get("wrong_at_step_0"))
    return not (only_sign and ev.get("started_sane"))


def seen_at_a_step(f: Finding) -> bool:
    """A finding of the watched run's timeline: it names the step it happened at."""
    return "at_step" in f.evidence


def forgets_alone(f: Finding) -> bool:
    """Weight decay whose lr x wd alone shrinks the weights fast, whatever else happened."""
    return bool(f.evidence.get("forgets_alone"))


@dataclass(frozen=True)
class Explains:
    cause: str
    symptoms: tuple
    when: Callable[[Finding, Finding], bool] = always


EXPLAINS = (
    Explains("loss-target-mismatch", STUCK + UNITS + ("learning-rate-too-small",)),
    Explains("output-range-mismatch", STUCK + UNITS + ("learning-rate-too-small",)),
    Explains("optimizer-mismatch", STUCK + UNITS + ("learning-rate-too-small",)),
    # nothing updated the weights: whatever the initial model does, it keeps doing
    Explains("step-never-called", STUCK + UNITS + ("learning-rate-too-small", "single-class-output",
             "bad-initialization", "low-capacity", "unstable-learning-rate")),
    Explains("no-gradient-path", STUCK + UNITS + ("learning-rate-too-small",)),
    Explains("accumulated-gradient", STUCK + UNITS + BLOWUP
             + ("unstable-learning-rate", "bad-initialization"), grown_in_training),
    # every step a crawl, whatever the lr: the model keeps what it started as
    Explains("shrunk-gradient", STUCK + UNITS + ("learning-rate-too-small",)),
    Explains("frozen-parameters", STUCK + UNITS + ("learning-rate-too-small",)),
    # y that X cannot predict: nothing to learn, or only rows to memorise
    Explains("unpredictable-targets", STUCK + UNITS + ("single-class-output", "generalization-gap")),
    # label-sorted batches: each class in turn pulls the model its way
    Explains("single-class-output", STUCK + ("dead-relu", "generalization-gap")),
    Explains("unscaled-data", STUCK + UNITS + BLOWUP + ("unstable-learning-rate",
             "learning-rate-too-small", "bad-initialization"), scale_of_outputs),
    Explains("excessive-weight-decay", STUCK + UNITS + ("unstable-learning-rate",
             "learning-rate-too-small", "bad-initialization", "exploding-gradient"), trained),
    Explains("decayed-learning-rate", STUCK + ("learning-rate-too-small",)),
    Explains("unstable-learning-rate", STUCK + UNITS + BLOWUP + ("bad-initialization",),
             grown_in_training),
    Explains("learning-rate-too-small", STUCK),
    Explains("bad-initialization", STUCK + UNITS + BLOWUP, init_explains),
    Explains("low-capacity", STUCK + ("vanishing-gradient",)),
    # a bottleneck squeezes every input through a unit or two, which sit saturated or dead
    Explains("low-capacity", ("saturated-activation", "dead-relu"), is_bottleneck),
    Explains("exploding-gradient", STUCK + ("non-finite", "loss-oscillation", "dead-relu",
                                            "saturated-activation")),
    # a stack of sigmoid/tanh layers that loses a row's gradient signal on its way back; the
    # units that saturate inside it, behind a first layer that passes, follow from its depth
    Explains("vanishing-gradient", STUCK),
    Explains("vanishing-gradient", ("saturated-activation",), starts_inside),
    Explains("saturated-activation", STUCK),
    Explains("dead-relu", STUCK),
    Explains("non-finite", ("loss-oscillation", "loss-plateau")),
    Explains("constant-output", ("loss-plateau", "loss-oscillation")),
    Explains("learned-nothing", ("loss-plateau",)),
)


def never(f: Finding) -> bool:
    return False


def is_error(f: Finding) -> bool:
    return f.severity == "error"


def any_severity(f: Finding) -> bool:
    return True


@dataclass(frozen=True)
class RuledOut:
    """``code`` is not named when any finding in ``by`` is present (and passes ``when``), unless
    its own finding passes ``unless``."""
    code: str
    by: tuple
    when: Callable[[Finding], bool] = any_severity
    unless: Callable[[Finding], bool] = never


# every finding but the symptoms learned-nothing itself describes
NAMES_A_CAUSE = tuple(c for c in PRECEDENCE
                      if c not in ("loss-plateau", "loss-oscillation", "learned-nothing"))

RULED_OUT_BY = (
    # a small model is the cause only when the loss is stuck for no other reason
    RuledOut("low-capacity", ("output-range-mismatch", "loss-target-mismatch",
                              "single-class-output", "exploding-gradient", "accumulated-gradient",
                              "optimizer-mismatch", "no-gradient-path", "frozen-parameters",
                              "shrunk-gradient", "decayed-learning-rate", "unscaled-data", "excessive-weight-decay",
                              "unstable-learning-rate", "non-finite", "unpredictable-targets")),
    # ... a tiny lr or a weight scale read after training, unless the architecture itself cannot
    # carry the output (a 1-unit layer does not fit at any lr; its weights are few and odd)
    RuledOut("low-capacity", ("learning-rate-too-small", "bad-initialization"),
             unless=is_strict_bottleneck),
    RuledOut("low-capacity", ("bad-initialization",), init_of_its_own),
    # ... and units that stopped passing signal, unless the architecture is a bottleneck, whose
    # one or two units are what saturate or die
    RuledOut("low-capacity", UNITS, unless=is_bottleneck),
    # units that stopped passing signal shrink the gradient behind them: the gradient is not a
    # cause of its own there, unless the row signal fades through a sigmoid/tanh stack and the
    # saturation starts inside it
    RuledOut("vanishing-gradient", ("saturated-activation",), saturated_at_the_input),
    RuledOut("vanishing-gradient", ("dead-relu",), unless=through_depth),
    # decay that outweighs the data only because steps past the edge (seen at their step) grew
    # the weights it pulls on: AdamW's default 0.01 under a lr x500, the lr's consequence
    RuledOut("excessive-weight-decay", ("unstable-learning-rate",), seen_at_a_step,
             unless=forgets_alone),
    # the last word: a run that learned nothing although nothing in the model explains it
    RuledOut("learned-nothing", NAMES_A_CAUSE),
    # saturated or dead units, a vanishing gradient or an unreachable target also make the
    # curvature tiny; there a larger lr is not the fix
    RuledOut("learning-rate-too-small", ("output-range-mismatch", "saturated-activation",
                                         "dead-relu", "vanishing-gradient", "optimizer-mismatch",
                                         "frozen-parameters", "no-gradient-path",
                                         "shrunk-gradient", "decayed-learning-rate",
                                         "unpredictable-targets")),
    # ... and so does an init wrong of its own (zero or constant weights have a flat, degenerate
    # Hessian; huge ones a saturated head): a larger lr leaves it where it is
    RuledOut("learning-rate-too-small", ("bad-initialization",), init_of_its_own),
    # errors in the model that make a classifier answer one class (not dead-relu: label-sorted
    # batches killed 18 and 21 of 32 units in a layer, 2 of 3 seeds, the rest alive)
    RuledOut("single-class-output", ("constant-output", "vanishing-gradient",
                                     "exploding-gradient", "saturated-activation",
                                     "excessive-weight-decay"), is_error),
    # a loss that jumps around is not a plateau
    RuledOut("loss-plateau", ("loss-oscillation",)),
)

EXPLAINED = {(row.cause, s): row.when for row in EXPLAINS for s in row.symptoms}


def rank(code: str) -> int:
    return PRECEDENCE.index(code)


def ruled_out(findings: list) -> list:
    """Drop the diagnoses of exclusion that another finding present rules out."""
    present = {}
    for f in findings:
        present.setdefault(f.code, []).append(f)
    def excluded(f):
        return any(not row.unless(f) and any(row.when(g) for c in row.by for g in present.get(c, ()))
                   for row in RULED_OUT_BY if row.code == f.code)
    return [f for f in findings if not excluded(f)]


def direct_cause(symptom: Finding, findings: list) -> Finding | None:
    """The deepest finding present that explains this one, if any."""
    for cause in sorted(findings, key=lambda f: rank(f.code)):
        if rank(cause.code) >= rank(symptom.code):
            return None
        when = EXPLAINED.get((cause.code, symptom.code))
        if when is not None and when(cause, symptom):
            return cause
    return None


def root_of(f: Finding, direct: dict) -> Finding:
    while direct.get(id(f)) is not None:
        f = direct[id(f)]
    return f


def explain(findings: list) -> list:
    """The findings in the order to act on them: each root cause (most severe group first, then
    the deeper cause), followed by the findings that follow from it."""
    kept = ruled_out(findings)
    direct = {id(f): direct_cause(f, kept) for f in kept}
    roots = [f for f in kept if direct[id(f)] is None]
    groups = {id(r): [f for f in kept if f is not r and root_of(f, direct) is r] for r in roots}
    def group_rank(r):
        worst = min(SEVERITIES.index(f.severity) for f in [r] + groups[id(r)])
        return worst, rank(r.code), r.layer or ""
    ordered = []
    for r in sorted(roots, key=group_rank):
        members = sorted(groups[id(r)], key=lambda f: (rank(f.code), f.layer or ""))
        ordered.append(replace(r, explains=tuple(dict.fromkeys(f.code for f in members))))
        ordered += [replace(f, explained_by=r.code) for f in members]
    return ordered
