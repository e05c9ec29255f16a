"""diagnostics/runner.py: a check measures only where its needs hold; the runner adds the
evidence it declares before its own, and rewrites its fix where a rewrite's condition holds."""

from types import SimpleNamespace

from diagnostics import runner
from diagnostics.checks.record import Check, Evidence, Need, Rewrite
from diagnostics.report import Finding

LOWER = "; or lower the learning rate"


def measured(probe):
    probe.calls += 1
    return Finding("dead-relu", "warning", "dead-relu message.", {"dead": 3},
                   "Use LeakyReLU" + LOWER + ".")


def probe(**facts):
    return SimpleNamespace(calls=0, **facts)


def run(monkeypatch, p, **record):
    monkeypatch.setattr(runner, "CHECKS", (Check("dead-relu", measured, **record),))
    return runner.run_checks(p)


def test_a_check_whose_need_fails_is_never_measured(monkeypatch):
    needs = (Need("finite", lambda p: p.finite),)
    skipped, measured_once = probe(finite=False), probe(finite=True)
    assert run(monkeypatch, skipped, needs=needs) == [] and skipped.calls == 0
    assert len(run(monkeypatch, measured_once, needs=needs)) == 1 and measured_once.calls == 1


def test_declared_evidence_comes_first_and_the_check_s_own_keys_win(monkeypatch):
    attached = Evidence("run", lambda p: {"loss": 2.0, "dead": 0})
    found = run(monkeypatch, probe(), evidence=(attached,))[0]
    assert list(found.evidence) == ["loss", "dead"] and found.evidence["dead"] == 3


def test_a_fix_is_rewritten_only_where_its_condition_holds(monkeypatch):
    tiny = Rewrite("steps tiny", lambda p: p.tiny, LOWER)
    assert run(monkeypatch, probe(tiny=True), rewrites=(tiny,))[0].fix == "Use LeakyReLU."
    assert run(monkeypatch, probe(tiny=False), rewrites=(tiny,))[0].fix == \
        "Use LeakyReLU; or lower the learning rate."
