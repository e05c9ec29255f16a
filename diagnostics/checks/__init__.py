"""The checks: each ``check_<code>(probe) -> Finding | None`` reads probe data and nothing else."""
