"""Every check's record, in one explicit tuple, the deeper cause first: that order is the
explanation's precedence (diagnostics.explain), so a finding is only ever explained by one that
stands before it. The timeline checks of a watched run are in a second tuple. Adding a check is
its module (its measuring function and its record, diagnostics.checks.record) and its test; its
line here says where it stands."""

from diagnostics.checks import timeline
from diagnostics.checks.batches import UNSHUFFLED_BATCHES_CHECK
from diagnostics.checks.capacity import LOW_CAPACITY_CHECK
from diagnostics.checks.classes import SINGLE_CLASS_OUTPUT_CHECK
from diagnostics.checks.data import UNPREDICTABLE_TARGETS_CHECK, UNSCALED_DATA_CHECK
from diagnostics.checks.fallback import LEARNED_NOTHING_CHECK
from diagnostics.checks.finite import NON_FINITE_CHECK
from diagnostics.checks.forward import RANDOM_FORWARD_CHECK
from diagnostics.checks.gradients import (EXCESSIVE_WEIGHT_DECAY_CHECK, EXPLODING_GRADIENT_CHECK,
                                          VANISHING_GRADIENT_CHECK)
from diagnostics.checks.history import (GENERALIZATION_GAP_CHECK, LOSS_OSCILLATION_CHECK,
                                        LOSS_PLATEAU_CHECK)
from diagnostics.checks.loop import (ACCUMULATED_GRADIENT_CHECK, FROZEN_PARAMETERS_CHECK,
                                     NO_GRADIENT_PATH_CHECK, OPTIMIZER_MISMATCH_CHECK,
                                     STEP_NEVER_CALLED_CHECK)
from diagnostics.checks.outputs import (CONSTANT_OUTPUT_CHECK, LOSS_TARGET_MISMATCH_CHECK,
                                        OUTPUT_RANGE_MISMATCH_CHECK)
from diagnostics.checks.shrunk import SHRUNK_GRADIENT_CHECK
from diagnostics.checks.stability import (DECAYED_LEARNING_RATE_CHECK,
                                          LEARNING_RATE_TOO_SMALL_CHECK,
                                          UNSTABLE_LEARNING_RATE_CHECK)
from diagnostics.checks.timeline import (check_first_non_finite, check_gradients_never_reset,
                                         check_loss_far_above_constant_at_step_0,
                                         check_schedule_decayed_lr, check_units_died,
                                         check_updates_larger_than_weights)
from diagnostics.checks.units import DEAD_RELU_CHECK, SATURATED_ACTIVATION_CHECK
from diagnostics.checks.weights import BAD_INITIALIZATION_CHECK

CHECKS = (
    # the training program given the wrong thing to learn, or not learning at all
    LOSS_TARGET_MISMATCH_CHECK, OUTPUT_RANGE_MISMATCH_CHECK, RANDOM_FORWARD_CHECK,
    OPTIMIZER_MISMATCH_CHECK,
    STEP_NEVER_CALLED_CHECK, NO_GRADIENT_PATH_CHECK, ACCUMULATED_GRADIENT_CHECK,
    SHRUNK_GRADIENT_CHECK, FROZEN_PARAMETERS_CHECK, UNPREDICTABLE_TARGETS_CHECK,
    UNSHUFFLED_BATCHES_CHECK, SINGLE_CLASS_OUTPUT_CHECK,
    # the data and the hyper-parameters
    UNSCALED_DATA_CHECK, EXCESSIVE_WEIGHT_DECAY_CHECK, DECAYED_LEARNING_RATE_CHECK,
    UNSTABLE_LEARNING_RATE_CHECK, LOW_CAPACITY_CHECK, LEARNING_RATE_TOO_SMALL_CHECK,
    BAD_INITIALIZATION_CHECK, GENERALIZATION_GAP_CHECK,
    # what those do to the gradients and the units
    EXPLODING_GRADIENT_CHECK, VANISHING_GRADIENT_CHECK, SATURATED_ACTIVATION_CHECK,
    DEAD_RELU_CHECK,
    # what the run shows
    NON_FINITE_CHECK, CONSTANT_OUTPUT_CHECK, LOSS_OSCILLATION_CHECK, LEARNED_NOTHING_CHECK,
    LOSS_PLATEAU_CHECK,
)

# The timeline checks read a watched run (diagnostics.watch), each reporting under the code of
# the cause it names; where one reports, it replaces the post-hoc finding of that code.
TIMELINE_CHECKS = (
    (timeline.check_step_never_called, "step-never-called"),
    (timeline.check_steps_without_gradient, "no-gradient-path"),
    (check_gradients_never_reset, "accumulated-gradient"),
    (timeline.check_loss_summed_over_the_batch, "accumulated-gradient"),
    (check_loss_far_above_constant_at_step_0, "bad-initialization"),
    (check_updates_larger_than_weights, "unstable-learning-rate"),
    (check_schedule_decayed_lr, "decayed-learning-rate"),
    (check_units_died, "dead-relu"),
    (check_first_non_finite, "non-finite"),
)

CODES = tuple(check.code for check in CHECKS)
