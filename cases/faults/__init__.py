"""The fault-injection matrix: how often diagnose() names a fault's cause, measured as papers do.

- ``programs``: healthy PyTorch training programs, each a small ``Program`` dataclass;
- ``train``: the one loop they all run (zero_grad, forward, loss, backward, step);
- ``operators``: the faults, each a function program -> mutated program, with where it applies
  and the codes that name its cause (written before scoring);
- ``measure``: the final loss as a share of a constant predictor's, and the held-out score;
- ``matrix``: runs every job (over processes), calls diagnose() as a user would, and scores
  each mutant against its base (the harm rule, cause named, cause named first);
- ``table``: the tables, recomputed from the per-run records.

``python -m cases faults`` prints the tables. diagnostics/ never imports this package.
"""
