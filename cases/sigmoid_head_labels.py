"""Seed 004: one sigmoid output trained with half-MSE on the labels 0, 1, 2 flattens at chance.

Source: ../shared/seeds/004_7e2393a4773450e9.txt (a translated Q&A thread, "Why does
cost function for MLP flatten?"). The asker writes a numpy net with 5 sigmoid
hidden units and one sigmoid output, every weight and bias ``np.random.randn``,
and fits it with the cost 1/2 mean (y - y_hat)^2 to a noisy spiral of m = 1000
points (r = linspace(0, 5) + U(0, 1), theta = linspace(0, 8 pi)) whose thirds
are labelled 0, 1 and 2. Full-batch gradient descent, learning rate 0.2, gives
up after 1000 iterations; the cost flattens well above zero. The accepted
answer: a sigmoid lies in (0, 1), so with MSE "the model cannot predict values
above 1, and whenever the class is 2 it is always wrong"; the saturated sigmoid
also passes almost no gradient. "Classification networks usually end in a
softmax layer with cross-entropy."

Which reading is encoded, where the posted code has slips:
- input width 2. The code sets ``n = 1`` and then writes two coordinates into
  each row of ``X = np.zeros((m, n))``, which numpy refuses; the asker plotted
  and trained 2-D points, so the net is 2-5-1.
- lr 0.1 on ``half_mse``. The update is ``W -= np.mean(grads)/2 * learning_rate``
  where each per-sample gradient is that of 1/2 (y - y_hat)^2: the step is
  0.2/2 = 0.1 times the gradient of the mean half-MSE (the cost the code
  prints). The loop updates at iter 0..999: 1000 full-batch steps.
- the ``cost`` line is cut off in the post (``for x_train`` lacks ``in X]``);
  it evaluates the same half-MSE. The noise comes from a seeded numpy
  Generator instead of Python's ``random``; the test set is a second draw of
  the noise on the same spiral (the post has none).

Mechanism. The targets reach 2 but the head's range is (0, 1): every label-2
point keeps an error above 1 whatever the weights, and its gradient keeps
pushing the output up, towards the flat end of the sigmoid. The net settles on
the mean label everywhere: its output sits near 0.97-0.99 for every point
(largest output below 1 on seeds 0-9), the cost at 0.324-0.335, the constant
predictor's 0.3335, and rounding predicts class 1 for every point, so train
accuracy is exactly 333/1000. The output unit passes 13-33% of the sigmoid's
peak slope (diagnose's saturated-activation, seeds 0-7).

Fix "softmax-cross-entropy": three output units read as logits, softmax
cross-entropy on the class indices, the same hidden layer, init, lr and steps.
One-vs-rest (3 sigmoid outputs, half-MSE on one-hot targets, which the answer
also suggests) reaches only 0.42-0.61 train accuracy in the same 1000 steps and
diagnose calls it low-capacity (seeds 1, 2), so it is not a fix here.

Measured (numpy, seeds 0-9; torch seeds 0-2 the same), train accuracy:
failing 0.333 on every seed; softmax-cross-entropy 0.668-0.775 (seeds 0-2:
0.717, 0.683, 0.720), with 49-75% of the label-2 points predicted as 2 where
the failing net predicts none. Thresholds: failing < 0.5 (worst 0.333), fixed
> 0.5 (worst 0.668): chance is 1/3, and a head that never says 2 cannot pass
2/3.

Diagnosis: output-range-mismatch (error), loss-target-mismatch and
saturated-activation (warnings) on the failing run, seeds 0-7; loss-plateau
fires on 6 of those 8 seeds and is not required. The fix gets no finding.
"""

from cases import sources
from cases.case import Case, Threshold
from cases.config import RunConfig

STEPS = 1000             # "if iter >= 1000: ... giving up": 1000 updates
EFFECTIVE_LR = 0.2 / 2   # learning_rate 0.2 times the code's extra /2 on the mean gradient
HIDDEN = 5               # NNet(n, 5, 1)
SEPARATES = 0.5          # train accuracy: failing 1/3 on every seed, fix worst 0.668

FAILING = RunConfig(
    data="noisy_spiral3", sizes=(2, HIDDEN, 1), activation="sigmoid", out_activation="sigmoid",
    loss="half_mse", init="randn", optimizer="sgd", lr=EFFECTIVE_LR, steps=STEPS, targets="value")

CASE = Case(
    id="sigmoid-head-labels",
    source=sources.SEED_004,
    title="A sigmoid output fit with MSE to the labels 0, 1, 2 flattens at chance",
    story="A 2-5-1 numpy net with a sigmoid output, trained with half-MSE on class labels 0/1/2, "
          "flattens at chance accuracy: a sigmoid never exceeds 1, so every label-2 point stays "
          "wrong and pushes the output into the flat end of the sigmoid. Three logits with softmax "
          "cross-entropy learn the classes.",
    failing=FAILING,
    fixes={"softmax-cross-entropy": FAILING.replace(
        sizes=(2, HIDDEN, 3), out_activation="identity", loss="cross_entropy", targets="index")},
    failed_when=Threshold("train_acc", "<", SEPARATES),
    fixed_when=Threshold("train_acc", ">", SEPARATES),
    expected_codes=frozenset({"output-range-mismatch", "loss-target-mismatch",
                              "saturated-activation"}),
)
