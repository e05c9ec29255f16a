"""diagnostics/checks/evidence.py: the shared verdicts (is the history still improving?).
"""

import numpy as np
import pytest

from diagnose_helpers import chaotic_history


@pytest.mark.parametrize("history,improving", [
    (1 + np.exp(-np.arange(400) / 300), True),            # still falling
    (1 + np.exp(-np.arange(400) / 10), False),            # flat for the last 300 steps
    (chaotic_history(1.0), False),                        # noise around a level
    (np.arange(10.0), None),                              # too short to say
], ids=["falling", "flat", "chaotic", "short"])
def test_history_improving_is_a_plain_verdict(history, improving):
    """The verdict is compared with `is True`: a numpy bool there once made every run 'failing'."""
    from types import SimpleNamespace

    from diagnostics.checks.evidence import history_improving
    assert history_improving(SimpleNamespace(history=history)) is improving
