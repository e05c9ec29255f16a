"""The fault-injection matrix: healthy programs train, each operator injects what it claims,
the harm rule can say "no harm", the command prints its tables, and (slow) diagnose()'s totals
over the whole matrix stay above the floors measured when the matrix was built.
"""

import json
from dataclasses import dataclass, replace

import pytest
import torch
from torch import nn

from cases.cli import EXIT_OK, EXIT_USAGE, main
from cases.faults import matrix, table
from cases.faults.matrix import (HEALTHY, POST_HOC, WATCHED, Record, first_code, hurts,
                                 run_matrix, score)
from cases.faults.measure import outcome
from cases.faults.operators import (ADAM_LR, ADAM_LR_FACTOR, DEAD_BIAS, DECAY_SHRINK,
                                    DEEP_RELU_LAYERS, EPOCH_DECAY, OPERATORS, applicable)
from cases.faults.programs import PROGRAMS, Program, dataset
from cases.faults.train import HUGE_INIT_STD, batches, batches_per_epoch, build_model, train
from diagnostics import CODES
from diagnostics.report import Finding, Report

HEALTHY_SHARE_MAX = 0.6    # the noisiest healthy program (blobs at its Bayes error) ends ~0.53
QUICK_STEPS = 3            # enough steps to see what a mutant's loop does, cheap to run


# ----------------------------------------------------------------- the matrix's shape
def test_the_matrix_has_the_size_the_issue_asks():
    assert len(PROGRAMS) >= 8 and len(OPERATORS) >= 15
    assert {p.loss for p in PROGRAMS.values()} == {"cross_entropy", "bce_with_logits", "mse"}
    assert {p.optimizer for p in PROGRAMS.values()} == {"sgd", "momentum", "adam", "adamw"}
    assert {len(p.hidden) for p in PROGRAMS.values()} == {1, 2, 3}


@pytest.mark.parametrize("op", OPERATORS.values(), ids=lambda op: op.name)
def test_every_operator_names_known_codes_and_applies_somewhere(op):
    assert op.causes and op.causes <= set(CODES)
    assert any(op.applies(p) for p in PROGRAMS.values())


def test_an_operator_refuses_a_program_it_does_not_apply_to():
    with pytest.raises(ValueError, match="does not apply"):
        OPERATORS["sigmoid-head-on-regression"](PROGRAMS["iris-sgd-tanh"])


# ----------------------------------------------------------------- healthy programs
@pytest.mark.parametrize("name", PROGRAMS, ids=str)
def test_each_program_trains_healthy(name):
    run = train(PROGRAMS[name], seed=0)
    o = outcome(run)
    chance = 1 / max(dataset(PROGRAMS[name].data).classes, 1) if run.data.classes else 0.0
    assert o.finite and o.loss_share < HEALTHY_SHARE_MAX, o
    assert o.score > chance + 0.1, o


# ----------------------------------------------------------------- each operator does what it says
def quick(op: str | None = None, program: str = "digits-adam-relu"):
    """The base program (or its mutant) trained for QUICK_STEPS steps, seed 0."""
    p = PROGRAMS[program]
    p = OPERATORS[op](p) if op else p
    return train(replace(p, steps=QUICK_STEPS), seed=0)


def linears(model) -> list:
    return [m for m in model if isinstance(m, nn.Linear)]


def test_lr_operators_scale_the_learning_rate():
    base = quick().optimizer.param_groups[0]["lr"]
    assert quick("lr-too-high").optimizer.param_groups[0]["lr"] == pytest.approx(base * 100)
    assert quick("lr-too-low").optimizer.param_groups[0]["lr"] == pytest.approx(base / 1000)


def test_init_operators_set_the_weights():
    p = PROGRAMS["iris-sgd-tanh"]
    zeros = build_model(OPERATORS["zero-init"](p), 4, 3)
    assert all((m.weight == 0).all() and (m.bias == 0).all() for m in linears(zeros))
    huge = build_model(OPERATORS["huge-init"](p), 4, 3)
    assert all(m.weight.std() > HUGE_INIT_STD / 2 for m in linears(huge))
    positive = build_model(OPERATORS["positive-init"](p), 4, 3)
    assert all((m.weight >= 0).all() and (m.bias >= 0).all() for m in linears(positive))
    dead = build_model(OPERATORS["dead-relu-bias"](PROGRAMS["digits-adam-relu"]), 64, 10)
    assert (linears(dead)[0].bias == DEAD_BIAS).all()


def test_symmetric_init_copies_each_hidden_layer_s_first_unit_and_leaves_the_head():
    model = build_model(OPERATORS["symmetric-init"](PROGRAMS["wine-momentum-gelu"]), 13, 3)
    *hidden, head = linears(model)
    assert all((m.weight == m.weight[0]).all() and (m.bias == m.bias[0]).all() for m in hidden)
    assert not (head.weight == head.weight[0]).all()


def test_softmax_over_batch_normalises_each_class_over_the_rows_under_nll():
    run = quick("softmax-over-batch")
    assert run.program.loss == "nll" and run.model[-1].dim == 0
    columns = run.model(run.data.X[:16]).exp().sum(0)
    assert torch.allclose(columns, torch.ones_like(columns))
    assert not OPERATORS["softmax-over-batch"].applies(PROGRAMS["iris-sgd-tanh"])   # full batch


def test_architecture_operators_change_the_net():
    model = quick("no-activation").model
    assert all(isinstance(m, nn.Linear) for m in model)
    assert [m.out_features for m in linears(quick("bottleneck").model)] == [1, 10]
    assert sum(isinstance(m, nn.Sigmoid) for m in quick("deep-sigmoid-stack").model) == 8
    assert isinstance(quick("sigmoid-head-on-logits").model[-1], nn.Sigmoid)
    assert isinstance(quick("softmax-head-under-ce").model[-1], nn.Softmax)
    regression = quick("sigmoid-head-on-regression", program="sin-adamw-gelu-mse")
    assert isinstance(regression.model[-1], nn.Sigmoid)


def test_mse_on_class_indices_regresses_the_labels_as_numbers():
    run = quick("mse-on-class-indices")
    assert run.data.y.dtype == torch.float32 and run.data.y.shape[1] == 1
    assert set(run.data.y.unique().tolist()) == set(range(10))
    assert linears(run.model)[-1].out_features == 1


def test_no_zero_grad_loop_never_zeroes(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.optim.Adam, "zero_grad", lambda self, **kw: calls.append(1))
    quick("no-zero-grad")
    assert calls == []
    quick()
    assert len(calls) == QUICK_STEPS


def test_summed_loss_sums_over_the_batch():
    base, summed = quick(), quick("summed-loss")
    assert summed.history[0] == pytest.approx(base.history[0] * 64, rel=1e-5)


def test_unscaled_operators_scale_inputs_and_targets():
    base, unscaled = quick().data, quick("unscaled-inputs").data
    assert torch.allclose(unscaled.X, base.X * 1000) and torch.equal(unscaled.y, base.y)
    base = quick(program="sin-adamw-gelu-mse").data
    unscaled = quick("unscaled-targets", program="sin-adamw-gelu-mse").data
    assert torch.allclose(unscaled.y, base.y * 1000) and torch.equal(unscaled.X, base.X)


def test_shuffled_labels_keep_the_labels_but_not_their_rows():
    base, shuffled = quick().data.y, quick("shuffled-labels").data.y
    assert sorted(base.tolist()) == sorted(shuffled.tolist())
    assert (base == shuffled).float().mean() < 0.3


def test_weight_decay_operator_makes_decay_shrink_weights_a_tenth_per_step():
    group = quick("excessive-weight-decay").optimizer.param_groups[0]
    assert group["lr"] * group["weight_decay"] == pytest.approx(DECAY_SHRINK)


def test_detach_and_frozen_layers_leave_the_hidden_layers_without_gradient():
    detached = linears(quick("detach-in-forward").model)
    assert detached[0].weight.grad is None and detached[-1].weight.grad is not None
    frozen = linears(quick("frozen-hidden-layers").model)
    assert not frozen[0].weight.requires_grad and frozen[-1].weight.requires_grad


def test_stale_optimizer_holds_none_of_the_models_parameters():
    run = quick("stale-optimizer")
    held = {id(p) for g in run.optimizer.param_groups for p in g["params"]}
    assert not held & {id(p) for p in run.model.parameters()}


def test_label_sorted_batches_come_in_label_order():
    p = OPERATORS["label-sorted-batches"](PROGRAMS["digits-adam-relu"])
    y = quick().data.y
    rows = batches(p, y, seed=0)
    epoch = torch.cat([next(rows) for _ in range(len(y) // 64)])
    assert (y[epoch].diff() >= 0).all() and y[epoch[:64]].unique().tolist() == [0]


def test_lr_schedule_collapse_leaves_no_learning_rate():
    run = train(OPERATORS["lr-schedule-collapse"](PROGRAMS["iris-sgd-tanh"]), seed=0)
    assert run.optimizer.param_groups[0]["lr"] < 1e-6 * PROGRAMS["iris-sgd-tanh"].lr


# ----------------------------------------------------------------- issue 21's watched cases
def lr_of(run) -> float:
    return run.optimizer.param_groups[0]["lr"]


def test_adam_lr_operator_scales_adams_lr_and_refuses_sgd():
    assert lr_of(quick("adam-lr-too-high")) == pytest.approx(lr_of(quick()) * ADAM_LR_FACTOR)
    with pytest.raises(ValueError, match="does not apply"):
        OPERATORS["adam-lr-too-high"](PROGRAMS["iris-sgd-tanh"])


def test_normal_init_builds_a_deep_relu_net_of_unit_normal_weights():
    torch.manual_seed(0)
    model = build_model(OPERATORS["normal-init-deep-relu"](PROGRAMS["digits-adam-relu"]), 64, 10)
    assert sum(isinstance(m, nn.ReLU) for m in model) == DEEP_RELU_LAYERS
    assert all(0.8 < m.weight.std() < 1.2 for m in linears(model))   # >= 640 weights each


def test_no_zero_grad_adam_trains_with_adam_and_never_zeroes(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.optim.Adam, "zero_grad", lambda self, **kw: calls.append(1))
    run = quick("no-zero-grad-adam", program="iris-sgd-tanh")
    assert isinstance(run.optimizer, torch.optim.Adam) and lr_of(run) == ADAM_LR
    assert calls == []
    assert not OPERATORS["no-zero-grad-adam"].applies(PROGRAMS["digits-adam-relu"])


def test_no_optimizer_step_leaves_the_initial_weights():
    initial = train(replace(PROGRAMS["digits-adam-relu"], steps=0), seed=0).model
    never = quick("no-optimizer-step").model
    same = [torch.equal(a, b) for a, b in zip(initial.parameters(), never.parameters())]
    moved = [torch.equal(a, b) for a, b in zip(initial.parameters(), quick().model.parameters())]
    assert all(same) and not any(moved)


def test_scheduler_per_batch_decays_every_few_batches_where_per_epoch_would_not():
    p = OPERATORS["scheduler-per-batch"](PROGRAMS["digits-adam-relu"])
    step_size, gamma = EPOCH_DECAY
    per_batch = train(replace(p, steps=2 * step_size), seed=0)
    assert lr_of(per_batch) == pytest.approx(p.lr * gamma ** 2)
    epoch = batches_per_epoch(p, len(per_batch.data.y))
    per_epoch = train(replace(p, steps=step_size * epoch, scheduler_per_batch=False), seed=0)
    assert epoch == 22 and lr_of(per_epoch) == pytest.approx(p.lr * gamma)   # 1347 rows / 64
    assert not OPERATORS["scheduler-per-batch"].applies(PROGRAMS["iris-sgd-tanh"])


# ----------------------------------------------------------------- the watched loop
def test_watching_the_loop_changes_no_parameter_bit_for_bit():
    bare = train(PROGRAMS["circles-adam-relu3"], seed=1)
    watched = train(PROGRAMS["circles-adam-relu3"], seed=1, watched=True)
    assert bare.run is None and watched.run.closed and watched.run.t == bare.program.steps
    assert watched.history == bare.history
    assert all(torch.equal(a, b) for a, b in zip(bare.model.parameters(),
                                                 watched.model.parameters()))


def test_a_watched_job_hands_diagnose_the_recording():
    """N(0, 1) weights on a deep ReLU net: the weights are NaN after training, and only the
    recording's step 0 (a loss logged before any update) shows the init was wrong from it."""
    post = matrix.run_one("blobs-sgd-relu", "normal-init-deep-relu", 0)
    watched = matrix.run_one("blobs-sgd-relu", "normal-init-deep-relu", 0, WATCHED)
    assert (post.mode, watched.mode) == (POST_HOC, WATCHED)
    assert post.first == "non-finite" and watched.first == "bad-initialization"


# ----------------------------------------------------------------- scoring
def record(op=HEALTHY, share=0.1, score=0.9, finite=True, codes=()) -> Record:
    r = Record("p", op, 0, finite, share, score, codes=list(codes))
    r.first = r.codes[0] if r.codes else None
    return r


def test_the_harm_rule_can_say_no_harm():
    base = record()
    assert not hurts(base, record("x"))                      # the same numbers
    assert not hurts(base, record("x", share=0.5))           # loss up, score unchanged
    assert not hurts(base, record("x", score=0.5))           # score down, loss unchanged
    assert hurts(base, record("x", share=0.5, score=0.5))
    assert hurts(base, record("x", finite=False, share=None, score=None))


def test_scoring_reads_the_cause_named_and_named_first():
    records = score([record(), record("stale-optimizer", 1.0, 0.1,
                                      codes=["constant-output", "optimizer-mismatch"])])
    mutant = records[1]
    assert mutant.hurt and mutant.named and not mutant.named_first
    t = table.totals(records)
    assert (t.harmful, t.named, t.named_first, t.healthy_runs) == (1, 1, 0, 1)


def test_first_code_is_the_reports_first_finding():
    report = Report([Finding("loss-plateau", "warning", "m"), Finding("dead-relu", "error", "m")])
    assert first_code(report) == report.findings[0].code and first_code(Report()) is None


# ----------------------------------------------------------------- the command
def test_the_command_prints_the_tables_for_a_tiny_subset(tmp_path, capsys):
    out = tmp_path / "records.json"
    code = main(["faults", "--programs", "iris-sgd-tanh", "--operators", "stale-optimizer",
                 "--seeds", "0", "--workers", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == EXIT_OK
    assert "stale-optimizer" in printed and "iris-sgd-tanh" in printed
    assert "cause named first on" in printed
    runs = matrix.from_json(json.loads(out.read_text()))
    assert [(r.operator, r.seed, r.mode) for r in runs] == [("", 0, POST_HOC),
                                                            ("stale-optimizer", 0, POST_HOC)]
    assert table.render(runs) in printed      # the tables are recomputed from the records
    assert "mode:" not in printed             # the post-hoc printout is as before --watch


def test_the_command_watches_the_loop_with_watch(tmp_path, capsys):
    out = tmp_path / "records.json"
    code = main(["faults", "--watch", "--programs", "iris-sgd-tanh", "--operators",
                 "no-optimizer-step", "--seeds", "0", "--workers", "1", "--json", str(out)])
    printed = capsys.readouterr().out
    runs = matrix.from_json(json.loads(out.read_text()))
    assert code == EXIT_OK and printed.startswith("mode: watched")
    assert [r.mode for r in runs] == [WATCHED, WATCHED] and runs[1].named_first


def test_the_command_prints_markdown():
    records = score([record(), record("zero-init", 1.0, 0.1, codes=["bad-initialization"])])
    text = table.render(records, markdown=True)
    assert "| zero-init | bad-initialization | 1 | 1 | 1/1 (100%) | 1/1 (100%) |" in text


def test_the_command_has_help_with_its_own_exit_codes(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["faults", "--help"])
    assert exit_.value.code == 0
    assert "diagnose() raised on some run" in capsys.readouterr().out


def test_the_command_refuses_an_unknown_operator(capsys):
    assert main(["faults", "--operators", "nope"]) == EXIT_USAGE
    assert "valid operators: lr-too-high" in capsys.readouterr().err


# ----------------------------------------------------------------- the whole matrix (slow)
# The aim (issue 14): cause named first on >= 95% of harmful mutants, no error on any
# healthy run, at most 1 warning per 30 healthy runs. These floors are what diagnose()
# reached when the matrix was built (see docs/faults.md), minus a margin, so that a
# change that makes diagnose() worse fails here while the work towards the aim goes on.
# Measured 2026-12-03 (681 runs, seeds 0-2, twice with the same tables) after the reference
# fit: named first 394/454 = 0.87, named 415/454 = 0.91, 0 errors and 3 warnings on 30 healthy
# runs, 454 harmful mutants, diagnose() raised on none (2026-11-30, before it: 0.77 and 0.82 of
# 431). Then issue 21's five operators (792 runs, 547 harmful, 2026-12-03): post hoc 421/547 =
# 0.77 first, 449/547 = 0.82 named (the old operators' rows unchanged: the new ones include faults
# only a watched run can name, no-optimizer-step 0/30); watched (--watch) 502/547 = 0.92 first,
# 520/547 = 0.95 named, 0 errors and 3 warnings (the same blobs loss-oscillation) on 30 runs.
# Then clip-norm-tiny (807 runs, 562 harmful, 2026-12-03, third session): post hoc 509/562 =
# 0.91 first, 526/562 = 0.94 named; watched 549/562 = 0.98, 552/562 = 0.98. Then five more
# operators (924 runs, 645 harmful, fourth session): post hoc 600/645 = 0.93 first, 609/645 =
# 0.94 named; watched 634/645 = 0.98, 637/645 = 0.99; healthy 0 and 0. Fifth session (924 runs,
# 644 harmful, 2026-12-04: plain SGD's unapplied steps, a summed loss at step 0, a post-hoc .grad
# the recording contradicts): post hoc 615/644 = 0.955 first, 624/644 = 0.969 named; watched
# 639/644 = 0.992, 640/644 = 0.994; healthy 0 and 0.
@dataclass(frozen=True)
class Floors:
    named_first: float
    named: float
    healthy_errors: int = 0              # 0 measured, and the aim
    warnings_per_healthy_run: float = 1 / 30   # 0 measured (3 before a run as good as the
                                             # reference stopped being read as oscillating), the aim
    harmful: int = 615                   # 644 measured (645 the session before; 562 before its
                                         # 5 operators): the harm rule reads no diagnose();
                                         # fewer means the programs or operators changed
    crashes: int = 0                     # 0 measured (3 before sharpness handled cut graphs and
                                         # overflowed curvature)


FLOORS = {POST_HOC: Floors(named_first=0.92, named=0.93),     # 0.955 and 0.969 measured
          WATCHED: Floors(named_first=0.96, named=0.96)}      # 0.992 and 0.994 measured


@pytest.mark.slow
@pytest.mark.parametrize("mode", FLOORS)
def test_the_whole_matrix_keeps_diagnose_above_its_floors(mode):
    records = run_matrix(list(PROGRAMS), list(OPERATORS), (0, 1, 2), workers=2, mode=mode)
    floors = FLOORS[mode]
    t = table.totals(records)
    assert t.crashes <= floors.crashes, table.render(records)
    assert t.harmful >= floors.harmful
    assert t.named_first_share >= floors.named_first, table.render(records)
    assert t.named_share >= floors.named, table.render(records)
    assert t.healthy_errors <= floors.healthy_errors, table.render(records)
    assert t.warnings_per_healthy_run <= floors.warnings_per_healthy_run, table.render(records)
