"""The casebook's command line: ``python -m cases`` or ``mlp-casebook``.

    list                      the cases, their source documents and runs
    run [CASE...]             run cases (failing and every fix) and print a verdict table
    report [--out DIR]        run cases and write index.md and index.html with figures
    diagnose --model M --data D.npz    diagnose() on your own saved torch model
    faults [--markdown] [--json F] [--watch]   the matrix that scores diagnose()

Exit codes: 0 everything behaved as documented (diagnose: no error finding),
1 a case did not behave as documented (diagnose: an error finding),
2 bad usage or bad input (a one-line message; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from cases import registry, user_files
from cases.errors import UsageError
from cases.progress import Progress

PROG = "mlp-casebook"
EXIT_OK, EXIT_NOT_AS_DOCUMENTED, EXIT_USAGE = 0, 1, 2
BACKENDS = ("numpy", "torch")
DEFAULT_OUT = "casebook"
MAX_LISTED = 5   # runs named in the summary line; the table above has them all


# ----------------------------------------------------------------- the parser
def build_parser() -> argparse.ArgumentParser:
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error instead of one line")
    parser = argparse.ArgumentParser(
        prog=PROG, parents=[debug], description="Documented failures of small MLPs: run them, "
        "diagnose them, and write a casebook with figures.", epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_list(sub, debug)
    add_run(sub, debug)
    add_report(sub, debug)
    add_diagnose(sub, debug)
    add_faults(sub, debug)
    return parser


EXIT_CODES_HELP = """exit codes:
  0  every run behaved as documented (diagnose: no error-severity finding)
  1  some run did not behave as documented (diagnose: at least one error finding)
  2  bad usage or bad input (missing or unreadable file, unknown case, refused pickle)"""


def subcommand(sub, name: str, parents, help: str, description: str = ""):
    return sub.add_parser(name, parents=parents, help=help, description=description or help,
                          epilog=EXIT_CODES_HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_selection(p, cases_nargs: str) -> None:
    """Which cases, backends, seeds and device: shared by run and report."""
    if cases_nargs == "positional":
        p.add_argument("cases", nargs="*", metavar="CASE",
                       help="case ids (see `list`); none means every case")
    else:
        p.add_argument("--cases", nargs="+", metavar="CASE", help="only these case ids")
    p.add_argument("--backend", nargs="+", choices=BACKENDS, default=["numpy"],
                   help="training backend(s) (default: numpy)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="device of the torch backend (default: cpu)")
    p.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                   help="seeds to run (default: each case's own seeds)")


def add_list(sub, debug) -> None:
    p = subcommand(sub, "list", [debug], "list the cases, their source documents and runs")
    p.set_defaults(func=cmd_list)


def add_run(sub, debug) -> None:
    p = subcommand(sub, "run", [debug], "run cases (the failing run and every fix) and print "
                   "whether each behaved as documented")
    add_selection(p, "positional")
    p.set_defaults(func=cmd_run)


def add_report(sub, debug) -> None:
    p = subcommand(sub, "report", [debug], "run cases and write the casebook: index.md, "
                   "index.html and the figures beside them")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"output folder, created if missing (default: {DEFAULT_OUT})")
    add_selection(p, "option")
    p.set_defaults(func=cmd_report)


def add_diagnose(sub, debug) -> None:
    p = subcommand(sub, "diagnose", [debug], "diagnose() on your own saved torch model",
                   DIAGNOSE_HELP)
    p.add_argument("--model", metavar="MODULE:FACTORY",
                   help="your code that builds the model, e.g. mypkg.nets:make_mlp (imported "
                   "from the current folder; called with no arguments)")
    p.add_argument("--weights", metavar="FILE.pt",
                   help="a state dict saved with torch.save(model.state_dict(), FILE), loaded "
                   "with torch.load(..., weights_only=True). Without it the model is "
                   "diagnosed as FACTORY() returns it: freshly initialised, untrained, unless "
                   "the factory loads weights itself (the report's notes say so)")
    p.add_argument("--trust-pickle", action="store_true",
                   help="allow --weights to be a whole pickled module (torch.save(model)). "
                   "Unpickling runs code named in the file: only for files you trust")
    p.add_argument("--data", required=True, metavar="FILE.npz",
                   help="numpy .npz with arrays X (n, d) and y (n,) or (n, k)")
    p.add_argument("--loss", default=None,
                   help="the loss the loop used: mse, cross_entropy, nll, bce, bce_with_logits, "
                   "hinge, l1, huber, ... (default: mse, except that integer labels on a model "
                   "of several outputs stop with the --loss to pass)")
    p.add_argument("--lr", type=float, help="the learning rate the model is trained with")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"),
                   help="the optimizer the loop used (with --lr), so that the rules that read "
                   "it apply (Adam's step size, decoupled decay)")
    p.add_argument("--momentum", type=float, help="SGD's momentum (with --optimizer sgd)")
    p.add_argument("--weight-decay", type=float,
                   help="the optimizer's weight_decay (default: torch's, 0 or AdamW's 0.01)")
    p.add_argument("--history", metavar="FILE.npy|FILE.csv",
                   help="the training loss per step or epoch: a .npy array, or a .csv of one "
                   "column or with a header naming the loss column (loss, train_loss, ...; "
                   "step, epoch and lr columns are never read as the loss); empty cells are "
                   "skipped with a note")
    p.add_argument("--history-column", metavar="NAME",
                   help="the header name of the loss column in a --history CSV")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="where to put the model (default: cpu)")
    p.add_argument("--json", metavar="FILE",
                   help="also write the report as JSON (report.to_dict()) to FILE")
    p.add_argument("--html", metavar="FILE",
                   help="also write the report as one self-contained HTML page with its "
                   "figure (report.to_html()) to FILE")
    p.epilog = DIAGNOSE_EXIT_CODES
    p.set_defaults(func=cmd_diagnose)


def add_faults(sub, debug) -> None:
    from cases.report.runs import WORKERS
    p = subcommand(sub, "faults", [debug], "run the fault-injection matrix (healthy programs x "
                   "fault operators x seeds) and print how often diagnose() names the cause",
                   FAULTS_HELP)
    p.epilog = FAULTS_EXIT_CODES
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="SEED",
                   help="seeds of every program and mutant (default: 0 1 2)")
    p.add_argument("--programs", nargs="+", metavar="PROGRAM", help="only these healthy programs")
    p.add_argument("--operators", nargs="+", metavar="OPERATOR", help="only these operators")
    p.add_argument("--markdown", action="store_true", help="print Markdown tables (docs/faults.md's)")
    p.add_argument("--json", metavar="FILE", help="write every run's record to FILE as JSON")
    p.add_argument("--watch", action="store_true",
                   help="record each loop with diagnostics.watch(model, optimizer) and pass "
                   "the recording to diagnose(..., run=run); without it, diagnose() after "
                   "training only (post hoc)")
    p.add_argument("--workers", type=int, default=WORKERS,
                   help=f"processes to spread the runs over (default: {WORKERS})")
    p.set_defaults(func=cmd_faults)


FAULTS_HELP = """Train each healthy program and each of its mutants (one fault injected),
call diagnose() after training as a user would, and print per operator how many
mutants hurt their program and how often diagnose() named the fault's cause, and
named it first; per healthy program, the errors and warnings it got."""

DIAGNOSE_EXIT_CODES = """exit codes:
  0  report.ok: no error finding, and the run did not fail (it beat a constant predictor and
     kept up with a linear / nearest-neighbour fit of the same rows)
  1  something to fix: an error finding, or a run that failed (the first line names the cause)
  2  bad usage or bad input (missing or unreadable file, a history that is not numbers,
     integer labels without --loss, refused pickle, a --json or --html FILE that cannot be
     written)"""


FAULTS_EXIT_CODES = """exit codes:
  0  the matrix ran and diagnose() returned a report on every run
  1  diagnose() raised on some run (the tables count it; the cause is then not named)
  2  bad usage (unknown program or operator, negative seed)"""


DIAGNOSE_HELP = """Diagnose your own saved torch model on your data and print the report.

Name the model the way Python servers name an app: --model package.module:factory
imports your code and calls factory() to build the module; --weights FILE loads a
state dict into it with torch.load(FILE, weights_only=True), which cannot run code.

A whole pickled module (torch.save(model)) is refused unless you pass
--trust-pickle: unpickling a file runs whatever code the file names, so pass it
only for files you made yourself or trust. The file is checked with the safe
loader first, so nothing is unpickled before you allow it.

Without --weights, the model is diagnosed as FACTORY() returns it: a freshly
initialised, untrained net unless your factory loads weights itself. The
report's notes say so; its findings then describe the initial state (e.g.
bad-initialization), not what training did."""


# ----------------------------------------------------------------- commands
def known_cases() -> dict:
    return {c.id: c for c in registry.CASES}


def select_cases(ids) -> list:
    """The cases named by ``ids`` (all when empty), or a UsageError listing the valid ids."""
    known = known_cases()
    unknown = [i for i in ids or () if i not in known]
    if unknown:
        valid = ", ".join(known) or "(none registered)"
        raise UsageError(f"unknown case {', '.join(map(repr, unknown))}; valid cases: {valid}")
    return [known[i] for i in ids] if ids else list(known.values())


def check_device(device: str, backends) -> None:
    if device == "cuda":
        import torch
        if "torch" not in backends:
            raise UsageError("--device cuda applies to the torch backend; add --backend torch")
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but torch sees no CUDA device; "
                             "use --device cpu")


def check_seeds(seeds) -> None:
    if seeds and min(seeds) < 0:
        raise UsageError(f"--seeds must be non-negative integers; got {seeds}")


def cmd_list(args) -> int:
    from cases.report.tables import case_list
    print(case_list(known_cases().values()))
    return EXIT_OK


def cmd_run(args) -> int:
    from cases.report.runs import run_case, run_count
    from cases.report.tables import outcome_table
    cases = select_cases(args.cases)
    check_device(args.device, args.backend)
    check_seeds(args.seeds)
    outcomes = []
    with Progress(run_count(cases, args.backend, args.seeds), "running") as bar:
        for case in cases:
            judged = run_case(case, args.backend, args.seeds, args.device, bar)
            bar.finished(case.id, len(judged))
            outcomes += judged
    print(outcome_table(outcomes))
    return verdict(outcomes)


def verdict(outcomes) -> int:
    bad = [o for o in outcomes if not o.as_documented]
    summary = f"{len(outcomes) - len(bad)} of {len(outcomes)} runs behaved as documented"
    listed = "; ".join(o.label for o in bad[:MAX_LISTED]) + ("; ..." if len(bad) > MAX_LISTED else "")
    print(summary + (f"; not as documented: {listed}" if bad else ""))
    return EXIT_NOT_AS_DOCUMENTED if bad else EXIT_OK


def cmd_report(args) -> int:
    from cases.report import write_report
    cases = select_cases(args.cases)
    check_device(args.device, args.backend)
    check_seeds(args.seeds)
    start = time.perf_counter()
    command = "python -m cases " + shlex.join(args.argv)
    written, outcomes = write_report(cases, Path(args.out), args.backend, args.seeds,
                                     args.device, command)
    for path in written:
        print(path)
    print(f"wrote {len(written)} files to {args.out}/ in {time.perf_counter() - start:.1f} s")
    return verdict(outcomes)


def cmd_diagnose(args) -> int:
    outputs = {flag: user_files.writable_file(path, flag)
               for flag, path in (("--json", args.json), ("--html", args.html)) if path}
    model = user_files.load_model(args.model, args.weights, args.trust_pickle, args.device)
    X, y = user_files.load_arrays(args.data)
    history, notes = user_files.load_history(args.history, args.history_column) \
        if args.history else (None, [])
    optimizer = user_files.make_optimizer(model, args.optimizer, args.lr, args.momentum,
                                          args.weight_decay)
    loss = args.loss or user_files.default_loss(model, X, y)
    report = user_files.run_diagnose(model, X, y, loss, args.lr, history, optimizer)
    report.notes[:0] = notes
    if args.model and not args.weights:
        report.notes.insert(0, untrained_note(args.model))
    print(report)
    user_files.write_outputs(report, outputs)
    return EXIT_OK if report.ok else EXIT_NOT_AS_DOCUMENTED


def untrained_note(spec: str) -> str:
    """The note a report gets when no --weights were loaded into the model ``spec`` built."""
    factory = spec.partition(":")[2]
    return (f"no --weights: diagnosed the model as {factory}() returned it, freshly "
            "initialised (untrained) unless it loads weights itself; pass --weights FILE.pt "
            "for the trained state")


def cmd_faults(args) -> int:
    from cases.faults.cli import run_faults
    return run_faults(args, UsageError)


# ----------------------------------------------------------------- entry
def main(argv=None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)        # argparse itself exits 2 on bad usage
    args.argv = argv
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except UsageError as e:
        if getattr(args, "debug", False):
            raise
        one_line = " ".join(str(e).split())
        print(f"{PROG} {args.command}: error: {one_line}", file=sys.stderr)
        return EXIT_USAGE
