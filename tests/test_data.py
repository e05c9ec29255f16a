"""The data sets of the cases: the IDX reader and MNIST loader on files written here, the rest by formula.

No real MNIST is needed: the tests write small IDX files (plain and gzipped) to
``tmp_path`` in the layout the four MNIST files have, and read them back.
"""

import gzip

import numpy as np
import pytest

from cases import data

IDX_CODES = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(">i2"): 0x0B,
             np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}
MNIST_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


# ----------------------------------------------------------------- writing IDX files
def idx_bytes(a: np.ndarray) -> bytes:
    """The IDX encoding of ``a``: two zero bytes, dtype code, ndim, big-endian dims, data."""
    a = np.asarray(a)
    big = a.astype(a.dtype.newbyteorder(">")) if a.dtype.itemsize > 1 else a
    header = bytes([0, 0, IDX_CODES[np.dtype(big.dtype.str)], a.ndim])
    dims = b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return header + dims + big.tobytes()


def write_idx(path, a, gz=False):
    raw = idx_bytes(a)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def fake_mnist(rng, n_train=12, n_test=5):
    """Images (n, 28, 28) uint8 and labels (n,) uint8, as MNIST's files hold them."""
    def part(n):
        return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), \
            rng.integers(0, 10, n, dtype=np.uint8)
    return part(n_train) + part(n_test)


def write_mnist(folder, arrays, gz=False):
    folder.mkdir(exist_ok=True)
    for stem, a in zip(MNIST_STEMS, arrays):
        write_idx(folder / (stem + (".gz" if gz else "")), a, gz)
    return folder


# ----------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
def test_read_idx_round_trips_every_dtype(tmp_path, rng, dtype, gz):
    a = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    back = data.read_idx(write_idx(tmp_path / "a.idx", a, gz))
    assert back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, a)


def test_read_idx_reads_a_one_dimensional_label_file(tmp_path):
    labels = np.array([5, 0, 4, 1, 9], np.uint8)
    back = data.read_idx(write_idx(tmp_path / "labels-idx1-ubyte", labels))
    assert back.dtype == np.uint8 and back.tolist() == [5, 0, 4, 1, 9]


@pytest.mark.parametrize("raw", [b"", b"\x00\x00", b"PK\x03\x04rest", b"\x00\x00\x42\x01abcd",
                                 b"\x01\x00\x08\x01\x00\x00\x00\x01x"],
                         ids=["empty", "short", "zip", "unknown-dtype", "nonzero-first-byte"])
def test_read_idx_refuses_a_bad_magic_number(tmp_path, raw):
    path = tmp_path / "bad.idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(path)


@pytest.mark.parametrize("cut", [1, 7, 10], ids=["one-value-short", "header-only", "inside-header"])
def test_read_idx_refuses_a_truncated_file(tmp_path, cut):
    raw = idx_bytes(np.arange(7, dtype=np.uint8).reshape(1, 7))
    path = tmp_path / "cut.idx"
    path.write_bytes(raw[:-cut])
    with pytest.raises(ValueError, match="cut.idx"):
        data.read_idx(path)


def test_read_idx_refuses_a_file_whose_data_does_not_fill_its_dtype(tmp_path):
    raw = idx_bytes(np.arange(3, dtype=">i4"))
    path = tmp_path / "odd.idx"
    path.write_bytes(raw[:-1])           # 11 data bytes: not a whole number of int32
    with pytest.raises(ValueError, match="odd.idx"):
        data.read_idx(path)


def test_read_idx_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.idx"):
        data.read_idx(tmp_path / "nope.idx")


# -------------------------------------------------------------------------- mnist
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_mnist_loads_the_four_files_flat_and_scaled(tmp_path, rng, gz):
    arrays = fake_mnist(rng)
    ds = data.mnist(None, path=write_mnist(tmp_path / "mnist", arrays, gz))
    X, y, Xt, yt = arrays
    assert ds.X.shape == (12, 784) and ds.X_test.shape == (5, 784)
    np.testing.assert_allclose(ds.X, X.reshape(12, -1) / 255.0)
    np.testing.assert_allclose(ds.X_test, Xt.reshape(5, -1) / 255.0)
    assert ds.y.dtype == np.int64 and ds.y.tolist() == y.tolist() and ds.y_test.tolist() == yt.tolist()
    assert ds.task == "classification" and ds.n_classes == 10


def test_mnist_accepts_the_dotted_file_names_some_mirrors_use(tmp_path, rng):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for stem, a in zip(MNIST_STEMS, fake_mnist(rng)):
        write_idx(folder / stem.replace("-idx", ".idx"), a)   # train-images.idx3-ubyte
    assert data.mnist(None, path=folder).X.shape == (12, 784)


def test_mnist_limit_keeps_the_first_images_of_each_split(tmp_path, rng):
    arrays = fake_mnist(rng)
    ds = data.mnist(None, path=write_mnist(tmp_path / "m", arrays), limit=4)
    assert len(ds.X) == len(ds.y) == 4 and len(ds.X_test) == len(ds.y_test) == 4
    assert ds.y.tolist() == arrays[1][:4].tolist()


def test_mnist_reads_the_folder_from_mnist_dir(tmp_path, rng, monkeypatch):
    arrays = fake_mnist(rng)
    monkeypatch.setenv("MNIST_DIR", str(write_mnist(tmp_path / "env", arrays)))
    assert data.mnist(None).y.tolist() == arrays[1].tolist()


def test_load_reads_mnist_through_its_path_option(tmp_path, rng):
    folder = write_mnist(tmp_path / "m", fake_mnist(rng))
    ds = data.load("mnist", 0, path=str(folder))
    assert ds.X.shape == (12, 784) and data.load("mnist", 0, path=str(folder)) is ds


def test_mnist_without_a_folder_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="MNIST_DIR"):
        data.mnist(None)


def test_mnist_names_a_folder_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        data.mnist(None, path=tmp_path / "no-such-folder")


def test_mnist_names_the_file_it_misses(tmp_path, rng):
    folder = write_mnist(tmp_path / "m", fake_mnist(rng))
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels"):
        data.mnist(None, path=folder)


def test_mnist_refuses_a_corrupt_file_by_name(tmp_path, rng):
    folder = write_mnist(tmp_path / "m", fake_mnist(rng))
    (folder / "train-images-idx3-ubyte").write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match="train-images"):
        data.mnist(None, path=folder)


# --------------------------------------------------------------- the other data sets
def test_load_refuses_an_unknown_name_listing_the_known_ones():
    with pytest.raises(ValueError, match="accepted:.*digits"):
        data.load("cifar")


@pytest.mark.parametrize("name", ["spiral_map", "sin_points", "noisy_spiral3", "digits", "synthetic"])
def test_every_random_data_set_is_determined_by_its_seed(name):
    a, b = data.DATASETS[name](np.random.default_rng(3)), data.DATASETS[name](np.random.default_rng(3))
    c = data.DATASETS[name](np.random.default_rng(4))
    for field in ("X", "y", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.X, c.X)


def test_load_caches_one_copy_per_seed_and_options():
    assert data.load("sin_grid", 0) is data.load("sin_grid", 0)
    assert data.load("sin_grid", 0, step=0.1) is not data.load("sin_grid", 0)


def test_spiral_map_pairs_each_point_with_the_same_index_on_the_other_spiral(rng):
    ds = data.spiral_map(rng)
    assert ds.X.shape == ds.y.shape == (2000, 2) and ds.X_test.shape == (3000, 2)
    t = (np.hypot(*ds.X.T) - 0.2) / 0.6           # the index along the spiral, from the radius
    np.testing.assert_allclose(np.hypot(*ds.y.T), 0.1 + 0.8 * t)   # radii 0.2..0.8 -> 0.1..0.9
    np.testing.assert_allclose(ds.X, (0.2 + 0.6 * t)[:, None] * np.c_[np.cos(5 * np.pi * t),
                                                                        np.sin(5 * np.pi * t)],
                               atol=1e-12)
    np.testing.assert_allclose(ds.y, (0.1 + 0.8 * t)[:, None] * np.c_[np.cos(6 * np.pi * t),
                                                                        np.sin(6 * np.pi * t)],
                               atol=1e-12)


def test_spiral_map_splits_its_points_without_overlap(rng):
    ds = data.spiral_map(rng)
    every = np.concatenate([ds.X, ds.X_test])
    assert len(np.unique(every.round(12), axis=0)) == 5000


def test_sin_points_samples_ten_of_fifty_float32_points(rng):
    ds = data.sin_points(rng)
    assert ds.X.shape == (10, 1) and ds.X_test.shape == (50, 1)
    np.testing.assert_array_equal(ds.X_test[:, 0], np.linspace(-np.pi, np.pi, 50).astype(np.float32))
    assert set(ds.X[:, 0]) <= set(ds.X_test[:, 0]) and np.all(np.diff(ds.X[:, 0]) > 0)
    np.testing.assert_allclose(ds.y, np.sin(ds.X))


@pytest.mark.parametrize("step,count", [(0.05, 41), (0.1, 21)])
def test_sin_grid_covers_zero_to_two_with_its_step(step, count):
    ds = data.sin_grid(None, step=step)
    assert ds.X.shape == (count, 1) and ds.X[0, 0] == 0 and ds.X[-1, 0] == pytest.approx(2.0)
    np.testing.assert_allclose(ds.y, np.sin(2 * np.pi * ds.X) / 4 + 0.5)
    assert 0.25 - 1e-12 <= ds.y.min() and ds.y.max() <= 0.75 + 1e-12
    assert ds.X_test.shape == (201, 1)


def test_sin_grid_const_target_is_one_half():
    ds = data.sin_grid(None, target="const")
    assert np.all(ds.y == 0.5) and np.all(ds.y_test == 0.5)


def test_sin_grid_refuses_an_unknown_target():
    with pytest.raises(ValueError, match="'cos'.*accepted"):
        data.sin_grid(None, target="cos")


def test_noisy_spiral3_labels_its_thirds(rng):
    ds = data.noisy_spiral3(rng)
    assert ds.X.shape == ds.X_test.shape == (1000, 2) and ds.n_classes == 3
    assert np.bincount(ds.y).tolist() == [333, 333, 334]
    r, base = np.hypot(*ds.X.T), np.linspace(0, 5, 1000)
    assert np.all((r >= base - 1e-12) & (r < base + 1))        # radius = linspace + U[0, 1)
    assert not np.array_equal(ds.X, ds.X_test)                 # fresh noise for the test set


def test_digits_splits_the_1797_images_four_to_one(rng):
    ds = data.digits(rng)
    assert ds.X.shape[1] == 64 and len(ds.X) + len(ds.X_test) == 1797
    assert len(ds.X_test) == round(1797 * 0.2)
    assert ds.X.min() == 0 and ds.X.max() == 1 and ds.n_classes == 10
    assert set(ds.y.tolist()) == set(range(10)) and set(ds.y_test.tolist()) == set(range(10))


def test_digits_split_is_a_partition(rng):
    from sklearn.datasets import load_digits
    ds, full = data.digits(rng), load_digits().data / 16.0
    both = np.concatenate([ds.X, ds.X_test])
    assert sorted(map(bytes, both)) == sorted(map(bytes, full))


def test_synthetic_labels_come_from_a_linear_map(rng):
    ds = data.synthetic(rng, n=200, d=20, k=4)
    assert ds.X.shape == ds.X_test.shape == (200, 20) and ds.y.max() < 4
    from sklearn.linear_model import LogisticRegression
    fit = LogisticRegression(C=1e4, max_iter=5000).fit(ds.X, ds.y)
    assert fit.score(ds.X, ds.y) > 0.95                          # (nearly) separable by a plane
