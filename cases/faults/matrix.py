"""Run the matrix (healthy programs x fault operators x seeds), diagnose each run, score it.

One job trains one run (a healthy program, or a program with one operator applied) and calls
``diagnose()`` on what the loop left, as a user would. It returns a :class:`Record`: plain data
that the scoring and the tables read, and that ``--json`` writes, so every number of the table
can be recomputed from the records.

Scoring, per mutant, against its base (the same program and seed without the fault):
- ``hurt``: the mutant measurably hurts its base (:func:`hurts`); only those count;
- ``named``: one of the operator's cause codes is among the report's codes;
- ``named_first``: the report's first finding is one of them (:func:`first_code`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from cases.faults.measure import Outcome, as_plain, outcome
from cases.faults.operators import OPERATORS, applicable
from cases.faults.programs import PROGRAMS
from cases.faults.train import Trained, train

HEALTHY = ""   # the operator field of a healthy run
POST_HOC, WATCHED = "post-hoc", "watched"   # a record's mode: diagnose() after the loop, or
                                            # also given the loop's diagnostics.watch recording

# A mutant hurts its base when its final training loss, as a share of the constant
# predictor's, rises by at least LOSS_SHARE_RISE and its held-out score falls by at least
# SCORE_DROP, or when it is not finite. Both, because a fault can move one without harm to
# the other: a sigmoid head caps the loss's minimum while argmax stays right, and a
# memorising net can lower the loss while the held-out score falls. Measured over seeds 0-2
# (each seed its own split and init), a healthy program's share moves by at most 0.05 (moons;
# most by < 0.02) and its held-out score by at most 0.03 (diabetes' R^2 by 0.10 across
# splits; base and mutant share theirs): 0.1 and 0.05 sit above that noise.
LOSS_SHARE_RISE = 0.10
SCORE_DROP = 0.05


@dataclass
class Record:
    program: str
    operator: str                   # HEALTHY for the program itself
    seed: int
    finite: bool
    loss_share: float | None        # None when not finite
    score: float | None
    first: str | None = None        # the code diagnose() leads with (first_code)
    codes: list = field(default_factory=list)        # finding codes, in report order
    severities: list = field(default_factory=list)   # the same findings' severities
    diagnose_error: str = ""        # what diagnose() raised, if it did
    mode: str = POST_HOC            # POST_HOC or WATCHED
    seconds: float = 0.0            # training and diagnosing this run
    # filled by score() for mutants
    hurt: bool | None = None
    causes: list = field(default_factory=list)
    named: bool | None = None
    named_first: bool | None = None

    @property
    def label(self) -> str:
        return f"{self.operator or 'healthy'} on {self.program} seed {self.seed}"


def first_code(report) -> str | None:
    """The code diagnose() leads with, its first root cause: the one place that says which
    finding is 'first'."""
    return report.causes[0].code if report.causes else None


# ----------------------------------------------------------------- one run
def diagnosed(run: Trained):
    """diagnose() on the model, training rows, history and optimizer the loop left, and its
    watch recording when it was watched."""
    from diagnostics import diagnose
    return diagnose(run.model, run.data.X, run.data.y, loss=run.program.loss,
                    history=run.history, optimizer=run.optimizer, run=run.run)


def run_one(program_name: str, operator_name: str, seed: int, mode: str = POST_HOC) -> Record:
    """One job (a worker's unit): train, measure, diagnose. Picklable by names."""
    start = time.perf_counter()
    program = PROGRAMS[program_name]
    if operator_name != HEALTHY:
        program = OPERATORS[operator_name](program)
    run = train(program, seed, watched=mode == WATCHED)
    record = record_of(program_name, operator_name, seed, outcome(run))
    record.mode = mode
    try:
        report = diagnosed(run)
        record.first = first_code(report)
        record.codes = [f.code for f in report.findings]
        record.severities = [f.severity for f in report.findings]
    except Exception as e:   # a crash is a result to report, not to hide
        record.diagnose_error = f"{type(e).__name__}: {e}"
    record.seconds = round(time.perf_counter() - start, 3)
    return record


def record_of(program: str, operator: str, seed: int, o: Outcome) -> Record:
    return Record(program, operator, seed, o.finite, as_plain(o.loss_share), as_plain(o.score))


# ----------------------------------------------------------------- the matrix
def jobs(programs, operators, seeds) -> list:
    """(program, operator, seed) for every healthy run and every applicable mutant."""
    out = []
    for name in programs:
        ops = [op.name for op in applicable(PROGRAMS[name]) if op.name in operators]
        out += [(name, op, seed) for seed in seeds for op in (HEALTHY, *ops)]
    return out


def run_matrix(programs, operators, seeds, workers: int = 1, bar=None,
               mode: str = POST_HOC) -> list:
    """Every job's Record, scored, in job order (spread over ``workers`` processes)."""
    from cases.report.runs import Runner
    todo = jobs(programs, operators, seeds)
    labels = [f"{op or 'healthy'} {p} seed {s}" for p, op, s in todo]
    with Runner(workers) as runner:
        records = runner.map(run_one, [(*job, mode) for job in todo], bar, labels)
    return score(records)


def score(records: list) -> list:
    """Fill hurt / named / named_first on each mutant from its base run (same program, seed)."""
    bases = {(r.program, r.seed): r for r in records if r.operator == HEALTHY}
    for r in records:
        if r.operator == HEALTHY:
            continue
        causes = OPERATORS[r.operator].causes
        r.causes = sorted(causes)
        r.hurt = hurts(bases[(r.program, r.seed)], r)
        r.named = bool(causes & set(r.codes))
        r.named_first = r.first in causes
    return records


def hurts(base: Record, mutant: Record) -> bool:
    """The harm rule: not finite, or a higher loss share AND a lower held-out score."""
    if not mutant.finite:
        return True
    if not base.finite:
        return False
    return (mutant.loss_share - base.loss_share >= LOSS_SHARE_RISE
            and base.score - mutant.score >= SCORE_DROP)


def as_json(records: list) -> list:
    return [asdict(r) for r in records]


def from_json(rows: list) -> list:
    """Records back from ``as_json`` (e.g. a ``--json`` file), to recompute the tables."""
    return [Record(**row) for row in rows]
