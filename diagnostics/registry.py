"""Every check, in one explicit tuple (and the timeline checks of a watched run in another):
adding a check is one function, one line here, and its place in diagnostics.explain (what it
explains, what rules it out)."""

from diagnostics.checks.capacity import check_low_capacity
from diagnostics.checks.classes import check_single_class_output
from diagnostics.checks.data import check_unpredictable_targets, check_unscaled_data
from diagnostics.checks.fallback import check_learned_nothing
from diagnostics.checks.finite import check_non_finite
from diagnostics.checks.gradients import (check_excessive_weight_decay, check_exploding_gradient,
                                          check_vanishing_gradient)
from diagnostics.checks.history import (check_generalization_gap, check_loss_oscillation,
                                        check_loss_plateau)
from diagnostics.checks.loop import (check_accumulated_gradient, check_frozen_parameters,
                                     check_no_gradient_path, check_optimizer_mismatch,
                                     check_step_never_called)
from diagnostics.checks.outputs import (check_constant_output, check_loss_target_mismatch,
                                        check_output_range_mismatch)
from diagnostics.checks.shrunk import check_shrunk_gradient
from diagnostics.checks.stability import (check_decayed_learning_rate,
                                          check_learning_rate_too_small,
                                          check_unstable_learning_rate)
from diagnostics.checks import timeline
from diagnostics.checks.timeline import (check_first_non_finite, check_gradients_never_reset,
                                         check_loss_far_above_constant_at_step_0,
                                         check_schedule_decayed_lr, check_units_died,
                                         check_updates_larger_than_weights)
from diagnostics.checks.units import check_dead_relu, check_saturated_activation
from diagnostics.checks.weights import check_bad_initialization

CHECKS = (
    check_output_range_mismatch,
    check_loss_target_mismatch,
    check_non_finite,
    check_optimizer_mismatch,
    check_step_never_called,
    check_accumulated_gradient,
    check_shrunk_gradient,
    check_no_gradient_path,
    check_frozen_parameters,
    check_unpredictable_targets,
    check_exploding_gradient,
    check_vanishing_gradient,
    check_constant_output,
    check_single_class_output,
    check_dead_relu,
    check_saturated_activation,
    check_unstable_learning_rate,
    check_learning_rate_too_small,
    check_decayed_learning_rate,
    check_loss_oscillation,
    check_loss_plateau,
    check_generalization_gap,
    check_low_capacity,
    check_bad_initialization,
    check_excessive_weight_decay,
    check_unscaled_data,
    check_learned_nothing,
)

# The timeline checks read a watched run (diagnostics.watch), each reporting under the code of
# the cause it names; where one reports, it replaces the post-hoc finding of that code.
TIMELINE_CHECKS = (
    (timeline.check_step_never_called, "step-never-called"),
    (check_gradients_never_reset, "accumulated-gradient"),
    (check_loss_far_above_constant_at_step_0, "bad-initialization"),
    (check_updates_larger_than_weights, "unstable-learning-rate"),
    (check_schedule_decayed_lr, "decayed-learning-rate"),
    (check_units_died, "dead-relu"),
    (check_first_non_finite, "non-finite"),
)

CODES = tuple(dict.fromkeys([c.__name__.removeprefix("check_").replace("_", "-") for c in CHECKS]
                            + [code for _, code in TIMELINE_CHECKS]))
