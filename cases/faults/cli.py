"""``python -m cases faults``: run the matrix, print its tables, optionally write the records."""

from __future__ import annotations

import json
import time
from pathlib import Path

from cases.faults.matrix import POST_HOC, WATCHED, as_json, jobs, run_matrix
from cases.faults.operators import OPERATORS
from cases.faults.programs import PROGRAMS
from cases.faults.table import render, totals
from cases.progress import Progress

EXIT_OK, EXIT_DIAGNOSE_RAISED = 0, 1


def selected(names, known: dict, what: str, usage_error) -> list:
    """``names`` (all of ``known`` when None), or a usage error listing the valid names."""
    unknown = [n for n in names or () if n not in known]
    if unknown:
        raise usage_error(f"unknown {what} {', '.join(map(repr, unknown))}; valid {what}s: "
                          f"{', '.join(known)}")
    return list(names) if names else list(known)


def run_faults(args, usage_error) -> int:
    programs = selected(args.programs, PROGRAMS, "program", usage_error)
    operators = selected(args.operators, OPERATORS, "operator", usage_error)
    if min(args.seeds) < 0 or args.workers < 1:
        raise usage_error(f"--seeds must be non-negative and --workers positive; got seeds "
                          f"{args.seeds}, workers {args.workers}")
    start = time.perf_counter()
    with Progress(len(jobs(programs, operators, args.seeds)), "faults") as bar:
        records = run_matrix(programs, operators, args.seeds, args.workers, bar,
                             WATCHED if args.watch else POST_HOC)
    print(render(records, markdown=args.markdown))
    print(f"\n{len(records)} runs in {time.perf_counter() - start:.0f} s on "
          f"{args.workers} worker(s)")
    if args.json:
        Path(args.json).write_text(json.dumps(as_json(records), indent=1) + "\n")
        print(f"records written to {args.json}")
    return EXIT_DIAGNOSE_RAISED if totals(records).crashes else EXIT_OK
