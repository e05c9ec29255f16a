"""The casebook report on a reduced set: every file it lists exists, every image is a PNG of
the size the page shows it at, the HTML is well formed and links only what exists, and the
same command writes the same report."""

import dataclasses
import io
import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from cases import registry
from cases.case import Case, Threshold
from cases.cli import EXIT_OK, main
from cases.config import RunConfig
from cases.progress import Progress
from cases.report import figures, write_report
from cases.report.casefigs import FIGURES
from cases.report.runs import Runner, run_case, submit_sweep
from cases.sources import Source
from diagnostics.report_figures import WENT_WRONG
from shared_runs import SharedRuns, session_folder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VOID_TAGS = {"meta", "img", "br", "hr", "link", "input"}
TINY_RUN = RunConfig(data="sin_points", sizes=(1, 8, 1), activation="tanh", lr=1e-4, steps=150)


TINY_SOURCE = Source(seed="test", title="tests/test_report.py", kind="test")
LINKED_SOURCE = Source(seed="web", title="A post with a URL", kind="blog post", year="2024",
                       links=(("The post", "https://example.org/post"),))


def tiny_case(case_id: str = "tiny-sin", failing: RunConfig = TINY_RUN, fix_lr: float = 0.1,
              metric: str = "train_loss", cut: float = 0.1, source: Source = TINY_SOURCE) -> Case:
    return Case(id=case_id, source=source, title="a tiny learning rate",
                story="A learning rate of 1e-4 leaves the loss where it started. 0.1 fits.",
                failing=failing, fixes={"larger-lr": failing.replace(lr=fix_lr)},
                failed_when=Threshold(metric, ">", cut), fixed_when=Threshold(metric, "<", cut),
                expected_codes=frozenset(), seeds=(0, 1, 2))


# A classifier on 2-D points (class regions) and one on 64-D digits (confusion matrix): only
# their figures matter here, not their verdicts.
SPIRAL = RunConfig(data="noisy_spiral3", sizes=(2, 16, 3), activation="tanh",
                   loss="cross_entropy", lr=1e-4, steps=30)
DIGITS = RunConfig(data="digits", sizes=(64, 16, 10), activation="relu", loss="cross_entropy",
                   lr=1e-4, steps=30, batch_size=64)


def png_size(path: Path) -> tuple:
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


class TagChecker(HTMLParser):
    """Balanced tags, and every src/href and #anchor it references."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.sources, self.anchors, self.ids = [], [], [], [], set()
        self.external = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids.add(attrs.get("id"))
        if tag == "img":
            self.sources.append(attrs["src"])
        href = attrs.get("href") or ""
        if href:
            kind = "anchors" if href.startswith("#") else "external" if "://" in href else "sources"
            getattr(self, kind).append(href)
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"</{tag}> closes nothing open at line {self.getpos()[0]}")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """A casebook of three tiny cases, written once for all xdist workers (tests/shared_runs.py):
    the first worker writes it, the other reads its files."""
    shared = SharedRuns(session_folder(tmp_path_factory, "casebook-report"))
    out = shared.folder / "casebook"
    cases = (tiny_case(), tiny_case("tiny-spiral", SPIRAL, 0.5, "train_acc", 0.0, LINKED_SOURCE),
             tiny_case("tiny-digits", DIGITS, 0.05, "train_acc", 0.0))
    written, outcomes = shared.get("report_dir", lambda: write_report(
        cases, out, ("numpy",), (0,), command="test"))
    return out, written, outcomes


def test_report_writes_every_file_it_lists(report_dir):
    out, written, outcomes = report_dir
    assert {"index.md", "index.html"} <= set(written)
    assert sorted(p.name for p in out.iterdir()) == sorted(written)
    assert len(outcomes) == 3 * 2                   # three cases x (failing, larger-lr) x 1 seed


def test_each_figure_is_a_png_of_the_size_shown(report_dir):
    out, written, _ = report_dir
    pngs = [f for f in written if f.endswith(".png")]
    assert len(pngs) == 3 * 3                       # loss, predictions, layers per case
    for f in pngs:
        assert (out / f).stat().st_size > 10_000, f"{f} looks empty"
        assert png_size(out / f) == figures.pixel_size("wide"), f


def test_the_predictions_figure_fits_the_data(report_dir):
    """1-D regression, 2-D classes and 64-D classes each get a predictions figure."""
    _, written, _ = report_dir
    for case_id in ("tiny-sin", "tiny-spiral", "tiny-digits"):
        assert f"{case_id}-predictions.png" in written


# a failing run whose loss goes non-finite within its 200 steps: its timeline has a step to mark
DIVERGING = RunConfig(data="sin_points", sizes=(1, 50, 1), activation="relu", lr=50.0, steps=200)


def test_a_failing_torch_run_gets_its_watched_timeline(tmp_path):
    """The torch runs are watched: the failing one's update ratios and dead units over the steps,
    the step the recording says it went wrong at marked in both panels."""
    case = tiny_case("tiny-diverging", DIVERGING, 0.01)
    written, outcomes = write_report((case,), tmp_path, ("torch",), (0,), command="test")
    assert "tiny-diverging-timeline.png" in written
    assert png_size(tmp_path / "tiny-diverging-timeline.png") == figures.pixel_size("wide")
    failing = next(o for o in outcomes if o.run_name == "failing")
    fig = figures.timeline_figure(failing)
    marked = [[line for line in ax.get_lines() if line.get_gid() == WENT_WRONG]
              for ax in fig.axes]
    assert len(fig.axes) == 2 and all(marked)
    assert figures.went_wrong_steps(failing.result.timeline)   # e.g. {13: ['non-finite']}


def test_html_is_well_formed_and_links_only_what_exists(report_dir):
    out, written, _ = report_dir
    checker = TagChecker()
    checker.feed((out / "index.html").read_text(encoding="utf-8"))
    checker.close()
    assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
    assert checker.sources and all((out / s).is_file() for s in checker.sources)
    assert set(checker.sources) == {f for f in written if f.endswith(".png")}
    assert all(a[1:] in checker.ids for a in checker.anchors)
    assert set(checker.external) == {LINKED_SOURCE.url}


def test_sources_are_cited_and_linked_where_they_give_a_url(report_dir):
    """The front table and the case section cite the document; a URL becomes a link."""
    out, _, _ = report_dir
    text = (out / "index.md").read_text(encoding="utf-8")
    html_text = (out / "index.html").read_text(encoding="utf-8")
    assert text.count(f"]({LINKED_SOURCE.url})") == 2          # front table, case section
    assert html_text.count(f'href="{LINKED_SOURCE.url}"') == 2
    assert text.count(TINY_SOURCE.citation()) == 2             # the sections without a URL


def test_markdown_links_only_what_exists(report_dir):
    out, written, _ = report_dir
    text = (out / "index.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(images) == sorted(f for f in written if f.endswith(".png"))
    for case_id in ("tiny-sin", "tiny-spiral", "tiny-digits"):
        assert f'<a id="{case_id}"></a>' in text and f"(#{case_id})" in text


def test_each_case_section_has_story_verdicts_and_findings(report_dir):
    out, _, outcomes = report_dir
    text = (out / "index.md").read_text(encoding="utf-8")
    assert text.count("What diagnose() says") == 3
    assert "A learning rate of 1e-4 leaves the loss where it started." in text
    for o in outcomes:
        assert f"| {o.case.id} | numpy | {o.run_name} | 0 | {o.threshold.metric} |" in text


def test_the_same_command_writes_the_same_report(tmp_path):
    """Reproducible: two reports of the same case are byte-identical, figures included."""
    def files(out):
        write_report((tiny_case(),), out, ("numpy",), (0,), command="test")
        return {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert files(tmp_path / "a") == files(tmp_path / "b")


def test_report_command_exits_0_and_prints_the_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(registry, "CASES", (tiny_case(),))
    code = main(["report", "--out", str(tmp_path), "--cases", "tiny-sin", "--seeds", "0"])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert "index.html" in out and f"wrote 5 files to {tmp_path}" in out


def test_every_figure_a_case_names_is_drawn_and_every_drawing_is_used():
    """A misspelt figure name fails here, not in the middle of a report; an unused one is dead."""
    named = {(c.id, name) for c in registry.CASES for name in c.figures}
    assert not {n for _, n in named} - set(FIGURES), [p for p in named if p[1] not in FIGURES]
    assert set(FIGURES) <= {n for _, n in named}, set(FIGURES) - {n for _, n in named}


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def test_progress_bar_is_quiet_off_a_terminal_and_draws_on_one():
    pipe, tty = io.StringIO(), Terminal()
    for stream in (pipe, tty):
        with Progress(3, "runs", stream) as bar:
            for name in "abc":
                bar.show(name)
                bar.advance()
    assert pipe.getvalue() == ""
    assert "3/3" in tty.getvalue() and tty.getvalue().endswith("\r\033[K")


def test_off_a_terminal_each_finished_case_gets_one_line_and_on_one_none():
    pipe, tty = io.StringIO(), Terminal()
    for stream in (pipe, tty):
        with Progress(4, "report", stream) as bar:
            for case in ("case-a", "case-b"):
                bar.show(f"{case} failing")
                bar.advance(2)
                bar.finished(case, 2)
    lines = pipe.getvalue().splitlines()
    assert [line.split(" done, ")[0] for line in lines] == ["report: case-a", "report: case-b"]
    assert all(re.search(r"done, 2 runs in \d+\.\d s \(\d+ s so far\)$", line) for line in lines)
    assert " done, " not in tty.getvalue()


def test_report_piped_prints_a_line_per_case_to_stderr(tmp_path, monkeypatch, capsys):
    """`report | tee log` (stderr not a terminal): one line per case, stdout keeps the files."""
    monkeypatch.setattr(registry, "CASES", (tiny_case(), tiny_case("tiny-two")))
    main(["report", "--out", str(tmp_path), "--seeds", "0"])
    captured = capsys.readouterr()
    assert re.findall(r"^report: (\S+) done, 2 runs in ", captured.err, re.M) == [
        "tiny-sin", "tiny-two"]
    assert " done, " not in captured.out


def test_run_case_judges_every_run_in_order():
    outcomes = run_case(tiny_case(), ("numpy",), (0, 1))
    assert [(o.seed, o.run_name) for o in outcomes] == [(0, "failing"), (0, "larger-lr"),
                                                         (1, "failing"), (1, "larger-lr")]
    assert all(o.metric_ok for o in outcomes)


def test_a_sweep_gives_each_run_as_alone_in_order():
    from cases.runner import run
    from cases.report.casefigs import sweep

    class Quiet:
        swept = {}
        def note(self, what):
            pass
    configs = [RunConfig(data="sin_points", sizes=(1, 8, 1), activation=a, steps=50, batch_size=2)
               for a in ("tanh", "relu", "sigmoid")]
    configs += [configs[0].replace(sizes=(1, 4, 1)), configs[1]]   # another group, a repeat
    ctx = Quiet()
    ctx.swept = {(tuple(configs), True): submit_sweep(Runner(1), configs, True)}   # early
    for results in (sweep(configs, Quiet(), "demo"), sweep(configs, ctx, "demo")):
        for cfg, r in zip(configs, results):
            assert r.config == cfg
            np.testing.assert_array_equal(r.history, run(cfg).history)


def test_a_figures_sweep_trains_early_not_when_it_is_drawn(tmp_path, monkeypatch):
    """The casebook trains each figure's sweeps beside the case runs (casefigs.planned_sweeps):
    drawing a figure whose sweep was not planned would train it in the main process."""
    from cases.report import casefigs
    def unplanned(configs, record_curve=True):
        raise AssertionError(f"a sweep of {len(configs)} runs was not planned")
    monkeypatch.setattr(casefigs, "train_sweep", unplanned)
    case = next(c for c in registry.CASES if c.id == "sin-activations")
    assert "activation-fits" in case.figures
    written, _ = write_report((case,), tmp_path, ("numpy",), (0,), command="test")
    assert "sin-activations-activations.png" in written


def test_run_cases_trains_the_planned_sweeps_of_a_case_it_runs_and_none_of_one_it_skips():
    from cases.report.runs import run_cases
    from cases.runner import run
    sweep = [TINY_RUN.replace(lr=lr, steps=20) for lr in (1e-3, 1e-2)]
    plan = lambda case, seed: [(sweep, False)]                        # noqa: E731
    numpy_only = dataclasses.replace(tiny_case(), backends=("numpy",))
    (_, skipped), = run_cases((numpy_only,), ("torch",), (0,), sweeps=plan)
    assert skipped == {}
    (outcomes, swept), = run_cases((numpy_only,), ("numpy",), (0,), sweeps=plan)
    assert len(outcomes) == 2 and list(swept) == [(tuple(sweep), False)]
    for cfg, r in zip(sweep, swept[tuple(sweep), False]()):
        np.testing.assert_array_equal(r.history, run(cfg).history)
