"""`r2dn.export` and ``r2dn export``: the C and NumPy steps equal JAX `simulate`, and what is
deployed is what was certified."""

import dataclasses
import functools
import importlib.util
import subprocess
from pathlib import Path

import equinox as eqx
import jax
import numpy as np
import pytest
from typer.testing import CliRunner

import r2dn
from r2dn import cli
from r2dn.certificates import check_lmi, to_dtype
from r2dn.data import Normalizer
from r2dn.examples import youla
from r2dn.export import Certified, export_arrays, to_c, to_numpy
from r2dn.export.arrays import deploy
from r2dn.export.c import compile_program, compiler, driver_source, write_c
from r2dn.export.to_numpy import CERTIFIED, write_numpy

NO_CC = "no C compiler (cc, gcc or clang) on the PATH: the C export cannot be compiled"
needs_cc = pytest.mark.skipif(compiler() is None, reason=NO_CC)

#: Relative error allowed between an exported step and JAX `simulate`, per dtype.
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}
STEPS = 1000
QSR = dict(Q=-np.eye(2), S=0.1 * np.ones((2, 2)), R=np.eye(2))

#: One small model of each kind (and activation): ``key, dtype -> model``. Each new model
#: structure costs JAX seconds of compilation, so the default run checks a Lipschitz R2DN and a
#: passive REN; the others are ``slow`` (``make test-long``).
KINDS = {
    "contracting-r2dn": lambda **k: r2dn.ContractingR2DN(
        2, 3, 4, 2, (5, 6), activation="tanh", **k
    ),
    "lipschitz-r2dn-free": lambda **k: r2dn.LipschitzR2DN(2, 3, 4, 2, (5,), gamma=2.0, **k),
    "lipschitz-r2dn-zero": lambda **k: r2dn.LipschitzR2DN(
        2, 3, 4, 2, (5,), gamma=2.0, feedthrough="zero", activation="sigmoid", **k
    ),
    "robust-r2dn": lambda **k: r2dn.RobustR2DN(2, 3, 4, 2, (5,), activation="elu", **QSR, **k),
    "affine-phi-r2dn": lambda **k: r2dn.ContractingR2DN(2, 3, 4, 2, **k),
    "identity-output-r2dn": lambda **k: r2dn.ContractingR2DN(
        2, 3, 4, 3, (5,), identity_output=True, activation="softplus", **k
    ),
    "contracting-ren": lambda **k: r2dn.ContractingREN(2, 3, 5, 2, activation="tanh", **k),
    "lipschitz-ren": lambda **k: r2dn.LipschitzREN(
        2, 3, 5, 2, gamma=3.0, activation="leaky_relu", **k
    ),
    "passive-ren": lambda **k: r2dn.PassiveREN(2, 3, 5, 2, nu_index=0.1, **k),
}


def perturbed(model, seed: int):
    """``model`` with every parameter array moved at random (biases are zero at init); any
    parameters give a certified model."""
    rng = np.random.default_rng(seed)
    move = lambda a: a + rng.normal(scale=0.3, size=a.shape).astype(a.dtype)  # noqa: E731
    return jax.tree.map(lambda a: move(a) if eqx.is_inexact_array(a) and a.ndim else a, model)


@functools.cache
def model_of(kind: str, dtype: str):
    """The test model of ``kind`` (built in float64), cast to ``dtype`` as it is exported."""
    build = eqx.filter_jit(lambda key: KINDS[kind](key=key, dtype="float64"))  # compiled: quicker
    model = perturbed(build(jax.random.key(0)), seed=1)
    return to_dtype(model, dtype)


@functools.cache
def exported_of(kind: str, dtype: str):
    return export_arrays(model_of(kind, dtype), dtype)


def inputs(nu: int, dtype: str, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(STEPS, nu)).astype(dtype)


def relative_error(y: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(y - reference) / np.linalg.norm(reference))


def import_file(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_c(folder, name: str, u: np.ndarray, ny: int) -> np.ndarray:
    """Compile the exported ``name`` with a driver and run it over ``u`` from the zero state."""
    (folder / "main.c").write_text(driver_source(name))
    exe = compile_program([folder / f"{name}.c", folder / "main.c"], folder / name, flags=["-O2"])
    out = subprocess.run([exe, str(len(u))], input=u.tobytes(), capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype=u.dtype).reshape(len(u), ny)


FAST = ("lipschitz-r2dn-free", "passive-ren")
ALL_KINDS = [k if k in FAST else pytest.param(k, marks=pytest.mark.slow) for k in KINDS]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_c_and_numpy_steps_equal_jax_simulate(kind, dtype, tmp_path):
    model, exported = model_of(kind, dtype), exported_of(kind, dtype)
    u = inputs(model.nu, dtype)
    reference = np.asarray(model.simulate(model.initial_state(), u)[1])
    assert reference.dtype == dtype and np.linalg.norm(reference) > 1

    write_numpy(exported, tmp_path, "net")
    module = import_file(tmp_path / "net.py")
    x_T, y = module.simulate(u)
    assert y.dtype == dtype and relative_error(y, reference) <= TOLERANCE[dtype]
    x, y0 = module.step(module.reset(), u[0])
    np.testing.assert_allclose(y0, y[0], rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    assert x.shape == (model.nx,)

    if compiler() is None:
        pytest.skip(NO_CC)
    write_c(exported, tmp_path, "net")
    y_c = run_c(tmp_path, "net", u, model.ny)
    assert relative_error(y_c, reference) <= TOLERANCE[dtype]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_the_deployed_arrays_are_the_certified_ones(kind, tmp_path):
    """The LMI re-checked from the exported file, and the deployed arrays rebuilt from it."""
    model, exported = model_of(kind, "float32"), exported_of(kind, "float32")
    write_numpy(exported, tmp_path, "net")
    with np.load(tmp_path / "net.npz") as npz:
        stored = {k: npz[k] for k in npz.files}
    certified = Certified.from_arrays(
        {k[len(CERTIFIED) :]: v for k, v in stored.items() if k.startswith(CERTIFIED)}
    )
    report = check_lmi(model)
    largest = certified.max_eigenvalue()
    assert largest < 0 and report.holds
    # check_lmi evaluates the model compiled, the export op by op: float32 round-off apart
    assert largest == pytest.approx(report.max_eigenvalue_as_run, abs=1e-5)
    normalizer = tuple(stored[k] for k in ("u_mean", "u_std", "y_mean", "y_std"))
    rebuilt = deploy(certified, str(stored["activation"]), normalizer, "float32").arrays()
    assert rebuilt.keys() == {k for k in stored if k != "activation" and "/" not in k}
    for name, array in rebuilt.items():
        np.testing.assert_array_equal(array, stored[name], err_msg=name)


def test_the_c_header_says_what_the_model_is(tmp_path):
    model = model_of("lipschitz-r2dn-free", "float32")
    header, source = to_c(model, tmp_path, name="lip")
    text = header.read_text()
    largest = max(check_lmi(model)[::2])
    for fact in (
        "model: R2DN",  # the variants are functions that choose the supply rate below
        "Lipschitz, gamma = 2",
        "nu = 2, nx = 3, nv = 4, ny = 2, hidden = (5,)",
        "gamma = 2",
        f"largest LMI eigenvalue {largest:.6g}",
        "dtype: float32",
        "void lip_step(lip_state *state, const float u[2], float y[2]);",
    ):
        assert fact in text, fact
    assert "malloc" not in source.read_text() and "static const real S[" in source.read_text()


@pytest.fixture(scope="module")
def trained_file(tmp_path_factory):
    """A saved Lipschitz R2DN (float32) whose normaliser maps to very unequal physical units."""
    spec = r2dn.ModelSpec("lipschitz-r2dn", dict(nu=2, nx=3, nv=4, ny=2, hidden=[5], gamma=2.0))
    normalizer = Normalizer(
        u_mean=[1.0, -20.0], u_std=[0.5, 30.0], y_mean=[100.0, 0.0], y_std=[5.0, 0.01]
    )
    trained = r2dn.TrainedModel(
        model=perturbed(spec.build(jax.random.key(0)), seed=3),
        spec=spec,
        normalizer=normalizer,
        dt=0.1,
        input_names=("u1", "u2"),
        output_names=("y1", "y2"),
    )
    path = tmp_path_factory.mktemp("trained") / "model.r2dn"
    return r2dn.save_model(path, trained)


def invoke(*args):
    return CliRunner().invoke(cli.app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_r2dn_export_takes_and_returns_physical_units(trained_file, dtype, tmp_path):
    trained = r2dn.load_model(trained_file)
    trained = dataclasses.replace(trained, model=to_dtype(trained.model, dtype))
    u = (trained.normalizer.u_mean + trained.normalizer.u_std * inputs(2, "float64")).astype(dtype)
    reference = trained.predict(u)
    assert np.abs(reference).mean() > 10  # the outputs are in physical units

    result = invoke("export", trained_file, "--to", "numpy", "--out", tmp_path, "--dtype", dtype)
    assert result.exit_code == 0, result.output
    y = import_file(tmp_path / "model.py").simulate(u)[1]
    assert relative_error(y, reference) <= TOLERANCE[dtype]

    if compiler() is None:
        pytest.skip(NO_CC)
    result = invoke("export", trained_file, "--to", "c", "--out", tmp_path, "--dtype", dtype)
    assert result.exit_code == 0 and "model.h" in result.output, result.output
    assert relative_error(run_c(tmp_path, "model", u, 2), reference) <= TOLERANCE[dtype]


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda p: None, ["missing.r2dn", "--to", "c"], "no r2dn file at missing.r2dn"),
        (
            lambda p: (p / "bad.r2dn").write_bytes(b"junk"),
            ["bad.r2dn", "--to", "c"],
            "not an r2dn file",
        ),
        (None, ["MODEL", "--to", "rust"], "Invalid value for '--to'"),
        (lambda p: (p / "out").write_text(""), ["MODEL", "--to", "c", "--out", "out"], "is a file"),
        (
            lambda p: (p / "file").write_text(""),
            ["MODEL", "--to", "numpy", "--out", "file/sub"],
            "cannot create the folder",
        ),
        (None, ["MODEL", "--to", "c", "--name", "2fast"], "must be a C and Python identifier"),
    ],
)
def test_bad_input_is_a_one_line_error(make, args, message, trained_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if make:
        make(tmp_path)
    args = [str(trained_file) if a == "MODEL" else a for a in args]
    if "--out" not in args:
        args += ["--out", "deploy"]
    result = invoke("export", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output
    if "--to" in args and args[args.index("--to") + 1] != "rust" and message != "is a file":
        assert not list(tmp_path.glob("deploy/*"))  # nothing written on an error


def test_a_bad_name_or_dtype_is_refused_before_writing(tmp_path):
    model = model_of("passive-ren", "float64")
    with pytest.raises(ValueError, match="C and Python identifier"):
        to_c(model, tmp_path, name="int")
    with pytest.raises(ValueError, match="dtype must be one of"):
        to_numpy(model, tmp_path, dtype="float16")
    assert not list(tmp_path.iterdir())


@needs_cc
def test_exported_c_compiles_without_warnings_in_cxx_guards(tmp_path):
    """Two models in one program: every symbol but NAME_reset, NAME_step is file-local."""
    for name, kind in (("a", "passive-ren"), ("b", "lipschitz-r2dn-free")):
        write_c(exported_of(kind, "float64"), tmp_path, name)
    (tmp_path / "main.c").write_text(
        '#include "a.h"\n#include "b.h"\nint main(void) {\n'
        "    a_state s; b_state t; double u[2] = {1, 2}, y[2];\n"
        "    a_reset(&s); b_reset(&t); a_step(&s, u, y); b_step(&t, u, y);\n"
        "    return 0;\n}\n"
    )
    exe = compile_program([tmp_path / f for f in ("a.c", "b.c", "main.c")], tmp_path / "ab")
    assert subprocess.run([exe]).returncode == 0


@needs_cc
def test_the_youla_controller_in_a_c_closed_loop_reaches_the_jax_cost(tmp_path):
    """benchmarks/youla_loop.py, short: the C loop's cost equals JAX's to float32 round-off."""
    loop = import_file(Path(__file__).parents[1] / "benchmarks" / "youla_loop.py")
    policy = perturbed(
        r2dn.ContractingR2DN(1, 2, 4, 1, (8,), activation="tanh", key=jax.random.key(0)), seed=4
    )
    w = np.asarray(youla.disturbances(jax.random.key(1), 1, 2000))[0, :, 0]
    cost, seconds = loop.c_closed_loop(policy, w, tmp_path, "float32")
    assert cost == pytest.approx(loop.jax_cost(policy, w), rel=TOLERANCE["float32"])
    assert seconds > 0
