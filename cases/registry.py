"""Every case of the casebook, in the order of their source documents. One line adds a case."""

from cases import spiral_capacity       # seed 000
from cases import sin_activations       # seed 001, part 1
from cases import sin_deep_collapse     # seed 001, part 2
from cases import bifurcation           # seed 002
from cases import digits_course         # seed 003
from cases import digits_weight_decay   # seed 003, extension 2.2
from cases import sigmoid_head_labels   # seed 004

CASES = tuple(m.CASE for m in (
    spiral_capacity,
    sin_activations,
    sin_deep_collapse,
    bifurcation,
    digits_course,
    digits_weight_decay,
    sigmoid_head_labels,
))
