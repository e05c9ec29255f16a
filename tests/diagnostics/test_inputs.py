"""diagnose() takes what users have (issue 22, items 1 and 3): each input form gives the verdict
of the array call on the same trained model (same codes, same first cause, same loss and
yardsticks), and each bad input an error that names what was given and what is accepted.
docs/inputs.md is the table these tests check."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

from diagnose_helpers import relu_net
from diagnostics import diagnose
from diagnostics.inputs import MAX_ROWS

SMOOTHING = 0.1


class Frame:
    """What diagnose() reads of a pandas DataFrame or Series (pandas is not a dependency):
    ``to_numpy()``, and ``dtypes`` for the message on non-numeric columns."""

    def __init__(self, data: dict):
        self.data = data

    def to_numpy(self):
        cols = [np.asarray(v) for v in self.data.values()]
        return np.stack(cols, axis=1) if all(c.dtype.kind in "biuf" for c in cols) \
            else np.stack(cols, axis=1).astype(object)     # mixed columns: object, as pandas

    @property
    def dtypes(self):
        return {k: np.asarray(v).dtype for k, v in self.data.items()}


class Series(Frame):
    def __init__(self, values):
        super().__init__({"y": values})

    def to_numpy(self):
        return np.asarray(self.data["y"])


class Rows(IterableDataset):
    """An iterable dataset yielding one (x, y) pair at a time."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __iter__(self):
        return zip(self.X, self.y)


class Items(Dataset):
    """A map-style dataset whose items are whatever ``item(i)`` returns."""

    def __init__(self, n, item):
        self.n, self.item = n, item

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.item(i)


def verdict(report) -> dict:
    s = report.summary
    return {"codes": sorted(report.codes), "first_cause": [f.code for f in report.causes[:1]],
            "loss": s["loss"], "loss_value": s["loss_value"], "constant": s["constant_loss"],
            "linear": s.get("linear_loss"), "rows_given": s["rows_given"]}


def frame_of(X) -> Frame:
    return Frame({f"x{j}": np.asarray(X)[:, j] for j in range(np.shape(X)[1])})


# each form: (run, the array call's (X, y), the form's (X, y) or (X, y, loss)); the run's loss
# unless the form names its own
FORMS = {
    "tensors": ("digits", lambda X, y: (X, y), lambda X, y: (torch.as_tensor(X), torch.as_tensor(y))),
    "dataloader-shuffled": ("digits", lambda X, y: (X, y), lambda X, y: (DataLoader(
        TensorDataset(torch.as_tensor(X), torch.as_tensor(y)), batch_size=64, shuffle=True), None)),
    "tensordataset": ("digits", lambda X, y: (X, y),
                      lambda X, y: (TensorDataset(torch.as_tensor(X), torch.as_tensor(y)), None)),
    "iterable-dataset": ("digits", lambda X, y: (X, y), lambda X, y: (Rows(X, y), None)),
    "dataloader-of-iterable": ("digits", lambda X, y: (X, y),
                               lambda X, y: (DataLoader(Rows(X, y), batch_size=100), None)),
    "dataframe-series": ("digits", lambda X, y: (X, y), lambda X, y: (frame_of(X), Series(y))),
    "one-hot-floats": ("digits", lambda X, y: (X, y), lambda X, y: (X, np.eye(10)[y])),
    "regression-dataframe-series": ("sin", lambda X, y: (X, y), lambda X, y: (frame_of(X),
                                                                               Series(y[:, 0]))),
    "regression-y-flat": ("sin", lambda X, y: (X, y), lambda X, y: (X, y[:, 0])),
    "regression-dataloader": ("sin", lambda X, y: (X, y), lambda X, y: (DataLoader(
        TensorDataset(torch.as_tensor(X), torch.as_tensor(y)), batch_size=32), None)),
    "images-flatten": ("images-flatten", lambda X, y: (X.reshape(len(X), -1), y),
                       lambda X, y: (X, y)),
    "images-dataloader": ("images-flatten", lambda X, y: (X.reshape(len(X), -1), y),
                          lambda X, y: (DataLoader(TensorDataset(torch.as_tensor(X),
                                                                 torch.as_tensor(y)), 50), None)),
    "label-smoothed-targets": ("digits-smoothed", lambda X, y: (X, y),
                               lambda X, y: (X, (1 - SMOOTHING) * np.eye(10)[y] + SMOOTHING / 10,
                                             "cross_entropy")),   # the smoothing in the targets
}


@pytest.fixture(scope="module")
def runs(loop_run, input_run):
    """name -> (model, X, y as numpy, the loss as the array call names it, history, opt)."""
    def numpy_run(run, loss):
        model, X, y, _, history, opt = run
        return model, X.numpy(), y.numpy(), loss, history, opt
    return {"digits": numpy_run(loop_run("digits-batch-32-adam", 0), "cross_entropy"),
            "sin": numpy_run(loop_run("sin-full-batch-adam", 0), "mse"),
            "images-flatten": numpy_run(input_run("images-flatten"), "cross_entropy"),
            "digits-smoothed": numpy_run(input_run("digits-smoothed"),
                                         nn.CrossEntropyLoss(label_smoothing=SMOOTHING))}


@pytest.mark.parametrize("form", list(FORMS))
def test_each_input_form_gets_the_verdict_of_the_array_call(form, runs):
    name, as_arrays, as_form = FORMS[form]
    model, X, y, loss, history, opt = runs[name]
    before = [p.detach().clone() for p in model.parameters()]
    expected = diagnose(model, *as_arrays(X, y), loss=loss, history=history, optimizer=opt)
    X_form, y_form, loss_form = (*as_form(X, y), loss)[:3]
    got = diagnose(model, X_form, y_form, loss=loss_form, history=history, optimizer=opt)
    assert verdict(got) == verdict(expected), (got, expected)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_a_dataloader_says_how_many_rows_it_read_and_leaves_the_rngs_alone(runs):
    model, X, y, loss, history, opt = runs["digits"]
    loader = DataLoader(TensorDataset(torch.as_tensor(X), torch.as_tensor(y)), 64, shuffle=True)
    state = torch.random.get_rng_state()
    report = diagnose(model, loader, None, loss=loss)
    assert torch.equal(state, torch.random.get_rng_state())
    assert any(f"its {len(X)} rows" in n and "DataLoader" in n for n in report.notes), report.notes


def test_a_dataset_past_the_row_cap_is_read_as_the_array_subsample():
    torch.manual_seed(0)
    X, y = torch.randn(MAX_ROWS + 500, 3), torch.randn(MAX_ROWS + 500, 1)
    model = relu_net(3, 1)
    a, b = diagnose(model, X, y), diagnose(model, TensorDataset(X, y))
    assert verdict(a) == verdict(b) and b.summary["rows"] == MAX_ROWS
    assert any(f"subsample of {MAX_ROWS} of its {len(X)} rows" in n for n in b.notes), b.notes


def test_an_iterable_past_the_row_cap_is_read_to_the_cap_and_says_so():
    torch.manual_seed(0)
    X, y = torch.randn(MAX_ROWS + 500, 3), torch.randn(MAX_ROWS + 500, 1)
    report = diagnose(relu_net(3, 1), DataLoader(Rows(X, y), batch_size=128))
    assert report.summary["rows"] == MAX_ROWS == report.summary["rows_given"]
    assert any(f"the first {MAX_ROWS} rows" in n and "holds more" in n for n in report.notes)


def test_ignored_class_rows_are_left_out_with_a_note(runs):
    model, X, y, _, history, opt = runs["digits"]
    y_padded = y.copy()
    y_padded[::7] = -100
    got = diagnose(model, X, y_padded, loss=nn.CrossEntropyLoss(), history=history)
    kept = y_padded != -100
    expected = diagnose(model, X[kept], y[kept], loss="cross_entropy", history=history)
    assert verdict(got) == verdict(expected)
    assert any(f"{int((~kept).sum())} of {len(y)} rows have y == ignore_index" in n
               for n in got.notes), got.notes


# ----------------------------------------------------------------- y as the loop used it
def broadcast_loop(seed: int, flat_y: bool):
    """sin(x1) + x2^2 by a tanh net, Adam 1e-2 full batch; flat_y: the loss sees y (n,) against
    the (n, 1) output (the broadcasting bug), else y (n, 1)."""
    rng = np.random.default_rng(seed)
    X = torch.tensor(rng.uniform(-2, 2, (300, 2)))
    y = torch.sin(X[:, :1]) + X[:, 1:] ** 2
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1)).double()
    opt, history, target = torch.optim.Adam(model.parameters(), 1e-2), [], y[:, 0] if flat_y else y
    for _ in range(150):
        opt.zero_grad()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")    # torch warns of the broadcast; the loop goes on
            loss = F.mse_loss(model(X), target)
        loss.backward()
        opt.step()
        history.append(loss.item())
    return model, X, y, history


@pytest.mark.parametrize("seed", [0, 1])
def test_a_flat_y_is_read_as_the_outputs_shape_when_the_history_says_so(seed):
    model, X, y, history = broadcast_loop(seed, flat_y=False)
    natural = diagnose(model, X, y[:, 0], history=history)     # df["price"], not df[["price"]]
    assert verdict(natural) == verdict(diagnose(model, X, y, history=history))
    note = [n for n in natural.notes if "diagnosed with y as the outputs' shape" in n]
    assert note and "history's last loss" in note[0], natural.notes


@pytest.mark.parametrize("seed", [0, 1])
def test_a_flat_y_gets_the_broadcast_warning_only_when_the_history_shows_it(seed):
    model, X, y, history = broadcast_loop(seed, flat_y=True)
    shown = diagnose(model, X, y[:, 0], history=history)
    assert [f for f in shown.findings if "broadcast" in f.message], shown
    assert not [n for n in shown.notes if "outputs' shape" in n]
    unshown = diagnose(model, X, y[:, 0])    # no history: read as meant, with the note
    assert not [f for f in unshown.findings if "broadcast" in f.message]
    assert [n for n in unshown.notes if "no history to tell" in n], unshown.notes


# ----------------------------------------------------------------- tensors on the model's device
@pytest.mark.cuda
def test_a_cuda_model_is_probed_on_its_device_and_never_moved(runs):
    model, X, y, loss, history, opt = runs["digits"]
    cpu = diagnose(model, X, y, loss=loss, history=history)
    gpu_model = relu_net(64, 10).cuda()
    gpu_model.load_state_dict(model.state_dict())
    for Xf, yf in [(X, y), (torch.as_tensor(X).cuda(), torch.as_tensor(y).cuda())]:
        got = diagnose(gpu_model, Xf, yf, loss=loss, history=history)
        assert verdict(got)["codes"] == verdict(cpu)["codes"]
        assert got.summary["loss_value"] == pytest.approx(cpu.summary["loss_value"], rel=1e-4)
    assert all(p.is_cuda for p in gpu_model.parameters())


# ----------------------------------------------------------------- bad input, each message
def dicts(i):
    return {"image": torch.zeros(3), "label": 0}


BAD = {   # id: (call, exception, words the message holds)
    "dataloader-of-dicts": (lambda m: diagnose(m, DataLoader(Items(8, dicts), batch_size=4)),
                            TypeError, ("DataLoader", "dicts (keys ['image', 'label'])",
                                        "(x, y) pairs", "diagnose(model, X, y)")),
    "dataset-of-triples": (lambda m: diagnose(m, Items(8, lambda i: (torch.zeros(3), 0, 1.0))),
                           TypeError, ("Items", "3-tuples", "(x, y) pairs")),
    "loader-and-y": (lambda m: diagnose(m, TensorDataset(torch.zeros(8, 3), torch.zeros(8, 1)),
                                        torch.zeros(8, 1)),
                     TypeError, ("TensorDataset", "y was given too", "y omitted")),
    "y-missing": (lambda m: diagnose(m, torch.zeros(8, 3)), TypeError,
                  ("y is missing", "DataLoader", "(x, y) pairs")),
    "empty-dataset": (lambda m: diagnose(m, TensorDataset(torch.zeros(0, 3), torch.zeros(0, 1))),
                      ValueError, ("TensorDataset of 0 rows", "at least one")),
    "empty-iterable": (lambda m: diagnose(m, Rows([], [])), ValueError,
                       ("Rows that yields no rows",)),
    "rows-of-two-shapes": (lambda m: diagnose(m, Items(4, lambda i: (torch.zeros(3 + i % 2), 0.0))),
                           ValueError, ("rows differ in shape", "every x of one shape")),
    "text-column": (lambda m: diagnose(m, Frame({"x0": [1.0, 2.0], "x1": [1.0, 2.0],
                                                 "city": ["a", "b"]}), np.zeros((2, 1))),
                    TypeError, ("dtype", "columns ['city'] are not numeric", "accepted")),
    "images-without-flatten": (lambda m: diagnose(m, torch.zeros(8, 3, 2), torch.zeros(8, 1)),
                               ValueError, ("shape (8, 3, 2)", "nn.Flatten()", "2-D")),
    "images-through-a-linear": (lambda m: diagnose(m, torch.zeros(8, 2, 3), torch.zeros(8, 1)),
                                ValueError, ("X of shape (8, 2, 3)", "output of shape (8, 2, 1)",
                                             "nn.Flatten()")),
    "soft-targets-under-nll": (lambda m: diagnose(nn.Sequential(nn.Linear(3, 2)),
                                                  torch.zeros(4, 3), torch.full((4, 2), 0.5),
                                                  loss="nll"),
                               TypeError, ("only cross_entropy takes rows of class probabilities",)),
    "rows-not-probabilities": (lambda m: diagnose(nn.Sequential(nn.Linear(3, 2)),
                                                  torch.zeros(4, 3), torch.full((4, 2), 0.7),
                                                  loss="cross_entropy"),
                               TypeError, ("not one-hot or class probabilities", "summing to 1")),
    "probabilities-of-other-width": (lambda m: diagnose(nn.Sequential(nn.Linear(3, 2)),
                                                        torch.zeros(4, 3), torch.full((4, 4), 0.25),
                                                        loss="cross_entropy"),
                                     ValueError, ("4 class probabilities per row", "2 outputs")),
    "every-row-ignored": (lambda m: diagnose(nn.Sequential(nn.Linear(3, 2)), torch.zeros(4, 3),
                                             torch.full((4,), -100), loss=nn.CrossEntropyLoss()),
                          ValueError, ("every one of the 4 targets is ignore_index=-100",)),
}


@pytest.mark.parametrize("case", list(BAD))
def test_each_bad_input_names_what_was_given_and_what_is_accepted(case):
    call, exc, words = BAD[case]
    with pytest.raises(exc) as info:
        call(nn.Sequential(nn.Linear(3, 1)))
    for word in words:
        assert word in str(info.value), str(info.value)


def test_a_real_pandas_frame_when_pandas_is_installed(runs):
    pd = pytest.importorskip("pandas")
    model, X, y, loss, history, opt = runs["digits"]
    got = diagnose(model, pd.DataFrame(X), pd.Series(y), loss=loss, history=history)
    assert verdict(got) == verdict(diagnose(model, X, y, loss=loss, history=history))
