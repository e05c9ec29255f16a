"""The command line: every command, its exit codes, and clear one-line errors on bad input.

Most tests call ``cases.cli.main(argv)`` in-process (fast); one runs the real
``python -m cases diagnose`` in a subprocess with the user's model code on
PYTHONPATH, as a user would.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cases import registry
from cases.case import Case, Threshold
from cases.cli import EXIT_NOT_AS_DOCUMENTED, EXIT_OK, EXIT_USAGE, UsageError, main
from cases.config import RunConfig
from cases.sources import SOURCES, Source

ROOT = Path(__file__).resolve().parents[1]
TINY_RUN = RunConfig(data="sin_points", sizes=(1, 8, 1), activation="tanh", lr=1e-4, steps=150)
TINY_SOURCE = Source(seed="test", title="tests/test_cli.py", kind="test")


def tiny_case(case_id="tiny-sin", failed_when=Threshold("train_loss", ">", 0.1)) -> Case:
    """A case that runs in a blink: a too-small lr leaves sin unfitted, lr 0.1 fits it."""
    return Case(id=case_id, source=TINY_SOURCE, title="sin with a tiny learning rate",
                story="A learning rate of 1e-4 leaves the loss where it started. 0.1 fits sin.",
                failing=TINY_RUN, fixes={"larger-lr": TINY_RUN.replace(lr=0.1)},
                failed_when=failed_when, fixed_when=Threshold("train_loss", "<", 0.1),
                expected_codes=frozenset(), seeds=(0, 1, 2))


@pytest.fixture
def tiny_registry(monkeypatch):
    """The registry holds only the tiny case (and one that never behaves as documented)."""
    never = tiny_case("tiny-never", failed_when=Threshold("train_loss", ">", 1e6))
    monkeypatch.setattr(registry, "CASES", (tiny_case(), never))


def run_main(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, *words):
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


# ----------------------------------------------------------------- help and list
@pytest.mark.parametrize("argv", [[], ["list"], ["run"], ["report"], ["diagnose"]],
                         ids=["main", "list", "run", "report", "diagnose"])
def test_help_of_every_command_exits_0(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--help"])
    assert exc.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_diagnose_help_warns_that_unpickling_runs_code(capsys):
    with pytest.raises(SystemExit):
        main(["diagnose", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--trust-pickle" in text and "runs whatever code" in text
    assert "weights_only=True" in text


def test_no_command_prints_help_and_exits_2(capsys):
    code, _, err = run_main(capsys)
    assert code == EXIT_USAGE and "usage:" in err


def test_list_names_every_registered_case(capsys):
    code, out, _ = run_main(capsys, "list")
    assert code == EXIT_OK
    for case in registry.CASES:
        assert case.id in out and f"seed {case.source.seed}: {case.source.citation()}" in out


def test_list_cites_every_source_with_its_url_or_says_it_has_none(capsys):
    """A reader can find each document: its URL, or the line that says it gives none."""
    _, out, _ = run_main(capsys, "list")
    for source in SOURCES:
        assert source.title in out
        assert source.url in out if source.url else "no URL" in source.citation()


# ----------------------------------------------------------------- run
def test_run_prints_a_row_per_run_and_exits_0_when_all_as_documented(tiny_registry, capsys):
    code, out, _ = run_main(capsys, "run", "tiny-sin", "--seeds", "0", "1")
    rows = [line for line in out.splitlines() if line.startswith("tiny-sin ")]
    assert len(rows) == 2 * 2                       # (failing, larger-lr) x 2 seeds
    assert all(" yes " in row for row in rows), out
    assert code == EXIT_OK


def test_run_exits_1_when_a_case_does_not_behave_as_documented(tiny_registry, capsys):
    code, out, _ = run_main(capsys, "run", "tiny-never", "--seeds", "0")
    assert code == EXIT_NOT_AS_DOCUMENTED
    assert "no (metric)" in out and "not as documented: tiny-never numpy failing" in out


def test_unknown_case_exits_2_with_the_valid_ids(tiny_registry, capsys):
    code, out, err = run_main(capsys, "run", "tiny-sin", "nope")
    assert code == EXIT_USAGE and out == ""
    assert_one_line_error(err, "'nope'", "tiny-sin, tiny-never")


def test_debug_shows_the_traceback(tiny_registry):
    with pytest.raises(UsageError, match="unknown case"):
        main(["run", "nope", "--debug"])


@pytest.mark.parametrize("argv", [["run", "--backend", "jax"], ["run", "--seeds", "x"],
                                  ["report", "--bogus"]], ids=["backend", "seeds", "option"])
def test_bad_options_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE


def test_cuda_without_a_gpu_exits_2(tiny_registry, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    code, _, err = run_main(capsys, "run", "tiny-sin", "--backend", "torch", "--device", "cuda")
    assert code == EXIT_USAGE
    assert_one_line_error(err, "CUDA")


# ----------------------------------------------------------------- diagnose
USER_CODE = '''
import os
from pathlib import Path
from torch import nn


def make_mlp():
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))


class Canary(nn.Sequential):
    """Writes a file when unpickled: proof of whether a pickle was opened."""
    def __setstate__(self, state):
        Path(os.environ["CASEBOOK_CANARY"]).write_text("unpickled")
        super().__setstate__(state)


def make_canary():
    return Canary(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))


NOT_A_FACTORY = 3
'''


def trained_user_net(usernet, X, y, steps=300):
    """The user's tanh net fitted to sin(x1) by Adam 1e-2, full batch, with its loss history."""
    torch.manual_seed(0)
    net = usernet.make_mlp()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    Xt, yt, history = torch.tensor(X, dtype=torch.float32), torch.tensor(y, dtype=torch.float32), []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(net(Xt), yt)
        loss.backward()
        opt.step()
        history.append(loss.item())
    return net, history


@pytest.fixture
def user_files(tmp_path, monkeypatch):
    """A user's model module on sys.path, its state dict, a pickled module, data, a history."""
    (tmp_path / "usernet.py").write_text(USER_CODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CASEBOOK_CANARY", str(tmp_path / "canary.txt"))
    import usernet
    files = {k: tmp_path / v for k, v in dict(weights="w.pt", pickled="whole.pt", data="d.npz",
                                              history="h.csv", text="notes.txt").items()}
    X = np.random.default_rng(0).normal(size=(64, 2))
    y = np.sin(X[:, :1])
    net, history = trained_user_net(usernet, X, y)
    torch.save(net.state_dict(), files["weights"])
    torch.save(usernet.make_canary(), files["pickled"])
    np.savez(files["data"], X=X, y=y)
    files["history"].write_text("step,loss\n" + "\n".join(f"{i},{h}" for i, h in enumerate(history)))
    files["text"].write_text("not a model\n")
    files["canary"] = tmp_path / "canary.txt"
    yield files
    sys.modules.pop("usernet", None)


def diagnose_argv(files, *extra, weights="weights", data="data"):
    return ["diagnose", "--model", "usernet:make_mlp", "--weights", str(files[weights]),
            "--data", str(files[data]), *extra]


def test_diagnose_prints_the_report_of_a_state_dict_model(user_files, capsys):
    code, out, err = run_main(capsys, *diagnose_argv(user_files, "--lr", "0.01", "--history",
                                                     str(user_files["history"])))
    assert code == EXIT_OK, out + err     # a tanh net fitted to sin(x1): nothing is wrong
    assert out.startswith("diagnose:")


def test_diagnose_exits_1_on_an_error_finding(user_files, capsys):
    """Targets 1000x the fresh net's output spread: constant-output, an error."""
    far = user_files["data"].with_name("far.npz")
    with np.load(user_files["data"]) as z:
        np.savez(far, X=z["X"], y=1000 * z["y"])
    code, out, err = run_main(capsys, *diagnose_argv(dict(user_files, far=far), data="far"))
    assert code == EXIT_NOT_AS_DOCUMENTED, out + err
    assert "constant-output" in out


def test_a_model_without_weights_is_said_to_be_untrained(user_files, capsys):
    """No --weights: the report's notes say the net is as the factory built it."""
    argv = ["diagnose", "--model", "usernet:make_mlp", "--data", str(user_files["data"])]
    _, fresh, _ = run_main(capsys, *argv)
    _, trained, _ = run_main(capsys, *diagnose_argv(user_files))
    assert fresh.startswith("diagnose:")
    assert "note: no --weights: diagnosed the model as make_mlp() returned it" in fresh
    assert "untrained" in fresh and "untrained" not in trained


def test_diagnose_help_says_a_model_without_weights_is_untrained(capsys):
    with pytest.raises(SystemExit):
        main(["diagnose", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Without --weights" in text and "freshly initialised" in text


def test_pickled_module_is_refused_before_anything_is_unpickled(user_files, capsys):
    code, out, err = run_main(capsys, "diagnose", "--weights", str(user_files["pickled"]),
                              "--data", str(user_files["data"]))
    assert code == EXIT_USAGE
    assert_one_line_error(err, "--trust-pickle", "Canary")
    assert not user_files["canary"].exists()


def test_trust_pickle_loads_the_whole_module(user_files, capsys):
    code, out, err = run_main(capsys, "diagnose", "--weights", str(user_files["pickled"]),
                              "--trust-pickle", "--data", str(user_files["data"]))
    assert code == EXIT_OK, out + err     # the canary net, untrained, on sin(x): nothing wrong yet
    assert user_files["canary"].read_text() == "unpickled"   # the canary does fire when trusted


def corrupt(files):
    files["data"].write_bytes(files["data"].read_bytes()[:60])
    return diagnose_argv(files)


BAD_INPUTS = {
    "missing-data": (lambda f: diagnose_argv(f) + ["--data", str(f["data"]) + ".gone"],
                     "no such file"),
    "missing-weights": (lambda f: diagnose_argv(f, weights="history") + ["--weights", "nope.pt"],
                        "no such file"),
    "corrupt-npz": (corrupt, "not a readable .npz"),
    "npz-without-y": (lambda f: (np.savez(f["data"], X=np.zeros((3, 2))), diagnose_argv(f))[1],
                      "lacks ['y']"),
    "weights-not-a-model": (lambda f: diagnose_argv(f, weights="text"), "not a torch.save file"),
    "weights-not-a-state-dict": (lambda f: (torch.save([1, 2], f["weights"]),
                                            diagnose_argv(f))[1], "not a state dict"),
    "weights-do-not-fit": (lambda f: (torch.save({"0.weight": torch.zeros(3, 3)}, f["weights"]),
                                      diagnose_argv(f))[1], "does not fit"),
    "model-spec-without-colon": (lambda f: diagnose_argv(f) + ["--model", "usernet"],
                                 "not MODULE:FACTORY"),
    "model-module-missing": (lambda f: diagnose_argv(f) + ["--model", "nosuchmod:make"],
                             "importing 'nosuchmod' failed"),
    "model-not-a-factory": (lambda f: diagnose_argv(f) + ["--model", "usernet:NOT_A_FACTORY"],
                            "names a int"),
    "history-unreadable": (lambda f: diagnose_argv(f, "--history", str(f["text"])),
                           "accepted: a .npy array of losses, or a .csv"),
    "unknown-loss": (lambda f: diagnose_argv(f, "--loss", "l7"), "l7"),
    "json-in-a-missing-folder": (lambda f: diagnose_argv(f, "--json", str(f["data"].parent /
                                                                     "gone" / "r.json")),
                                 "does not exist"),
    "html-is-a-folder": (lambda f: diagnose_argv(f, "--html", str(f["data"].parent)),
                         "is a folder"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line(user_files, capsys, name):
    make_argv, words = BAD_INPUTS[name]
    code, out, err = run_main(capsys, *make_argv(user_files))
    assert code == EXIT_USAGE, (out, err)
    assert_one_line_error(err, words)
    assert not user_files["canary"].exists()


def test_json_and_html_write_the_report_and_its_page(user_files, tmp_path, capsys):
    out_json, out_html = tmp_path / "report.json", tmp_path / "report.html"
    code, out, err = run_main(capsys, *diagnose_argv(user_files, "--history",
                                                     str(user_files["history"]), "--json",
                                                     str(out_json), "--html", str(out_html)))
    assert code == EXIT_OK, out + err
    written = json.loads(out_json.read_text())
    assert written["verdict"] in out and set(written) >= {"ok", "findings", "layers", "summary"}
    page = out_html.read_text()
    assert page.startswith("<!DOCTYPE html>") and 'src="data:image/png;base64,' in page


@pytest.mark.slow(reason="three fresh interpreters that each import torch, matplotlib and "
                        "scikit-learn: 16 s of the default run on 2 quiet cores, 55 s loaded; "
                        "the in-process tests above check every command and error")
def test_python_m_cases_diagnose_end_to_end(user_files, tmp_path):
    """The real entry point, the user's code found through PYTHONPATH, and exit 2 on bad data."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    def cli(*argv):
        return subprocess.run([sys.executable, "-m", "cases", *argv], capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=120)
    good = cli(*diagnose_argv(user_files))
    assert good.returncode == EXIT_OK and good.stdout.startswith("diagnose:"), good.stderr
    refused = cli("diagnose", "--weights", str(user_files["pickled"]), "--data",
                  str(user_files["data"]))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert not user_files["canary"].exists()
    bad = cli(*corrupt(user_files))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr


def test_readme_cites_each_source_as_cases_sources_does():
    """docs/cases.md's case sections carry the same citations as `list` and the casebook."""
    readme = (ROOT / "docs" / "cases.md").read_text(encoding="utf-8")
    for source in SOURCES:
        assert f"**Source (seed {source.seed}):** {source.markdown()}" in readme, source.seed


# ----------------------------------------------------------------- the CLI as a user runs it
def history_file(tmp_path, text: str):
    path = tmp_path / "metrics.csv"
    path.write_text(text)
    return str(path)


def test_a_logger_csv_reads_its_loss_column_and_skips_empty_cells(user_files, tmp_path, capsys):
    """A CSVLogger-style file: step, epoch, lr beside train_loss, and rows of other metrics."""
    losses = [1 / (i + 1) for i in range(40)]
    rows = "".join(f"{i},0,0.01,{h}\n" + (f"{i},0,,\n" if i % 10 == 0 else "")
                   for i, h in enumerate(losses))
    path = history_file(tmp_path, "step,epoch,lr,train_loss\n" + rows)
    code, out, err = run_main(capsys, *diagnose_argv(user_files, "--history", path))
    assert "read column 'train_loss'" in out and "skipped 4 empty cell(s)" in out, out + err
    assert code in (EXIT_OK, EXIT_NOT_AS_DOCUMENTED)


def test_a_csv_whose_last_column_is_lr_is_never_read_as_the_loss(user_files, tmp_path, capsys):
    path = history_file(tmp_path, "loss,lr\n" + "".join(f"{1 / (i + 1)},0.01\n" for i in range(40)))
    code, out, err = run_main(capsys, *diagnose_argv(user_files, "--history", path))
    assert "read column 'loss'" in out, out + err


@pytest.mark.parametrize("text,words", [
    ("loss\n0.5\nabc\n", "row 2 holds 'abc', not a number"),
    ("a,b\n1,2\n", "cannot tell the loss column among ['a', 'b']"),
    ("0.5,0.1\n0.4,0.1\n", "2 columns and no header"),
])
def test_a_history_that_is_not_a_loss_column_is_refused_with_the_formats(user_files, tmp_path,
                                                                        capsys, text, words):
    code, out, err = run_main(capsys, *diagnose_argv(user_files, "--history",
                                                     history_file(tmp_path, text)))
    assert code == EXIT_USAGE and words in err, err
    assert "accepted: a .npy array of losses" in err or "--history-column" in err


def test_history_column_picks_the_named_column(user_files, tmp_path, capsys):
    path = history_file(tmp_path, "a,b\n" + "".join(f"{i},{1 / (i + 1)}\n" for i in range(40)))
    code, out, err = run_main(capsys, *diagnose_argv(user_files, "--history", path,
                                                     "--history-column", "b"))
    assert "read column 'b'" in out, out + err


def test_integer_labels_on_a_wide_model_without_loss_say_which_loss_to_pass(tmp_path,
                                                                             monkeypatch, capsys):
    (tmp_path / "widenet.py").write_text("from torch import nn\n\ndef make():\n"
                                         "    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), "
                                         "nn.Linear(8, 3))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    X = np.random.default_rng(0).normal(size=(60, 2))
    np.savez(tmp_path / "labels.npz", X=X, y=np.arange(60) % 3)
    code, _, err = run_main(capsys, "diagnose", "--model", "widenet:make", "--data",
                            str(tmp_path / "labels.npz"))
    sys.modules.pop("widenet", None)
    assert code == EXIT_USAGE and "pass --loss cross_entropy" in err, err


def test_optimizer_flags_build_the_optimizer_diagnose_reads(user_files, capsys):
    code, out, err = run_main(capsys, *diagnose_argv(user_files, "--optimizer", "adamw",
                                                     "--lr", "0.01", "--weight-decay", "0.05"))
    assert code in (EXIT_OK, EXIT_NOT_AS_DOCUMENTED), err
    refused = run_main(capsys, *diagnose_argv(user_files, "--optimizer", "adam"))
    assert refused[0] == EXIT_USAGE and "needs --lr" in refused[2]
    momentum = run_main(capsys, *diagnose_argv(user_files, "--momentum", "0.9"))
    assert momentum[0] == EXIT_USAGE and "need --optimizer" in momentum[2]
