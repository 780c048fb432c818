import contextlib
import fcntl
import os

# One BLAS/OpenMP thread per test process: the suite's linear algebra is small, and with two test
# workers on two cores (make test: pytest-xdist) a library's second thread only spins waiting for
# a busy core (L-BFGS-B ran ~25x slower per iteration so). Set before numpy or torch is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402 - after the thread settings
from hypothesis import HealthCheck, settings

# Sympy evaluation inside property tests is slow and uneven: no per-example deadline. On CI the
# examples are derandomised so a failure reproduces from the log.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


@contextlib.contextmanager
def _exclusive(path):
    """Hold an exclusive lock on ``path`` (one pytest-xdist worker at a time)."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def session_dir(tmp_path_factory):
    """A folder shared by every worker of this test session (pytest-xdist runs one process per
    worker, each with its own session fixtures; their base temporary folders share a parent)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


# the session's quick suite: its task folder and lock, under session_dir (read by the controller's
# process and the workers' fixture alike)
_QUICK_FOLDER, _QUICK_LOCK = "quick-suite-seed0", "quick-suite.lock"
_QUICK_SUITE_SCRIPT = """
import sys
from pathlib import Path
from dropmuon.figures.report import COUPLING_TABLE_FOLDER
from dropmuon.verification import run_suite
from dropmuon.verification.synthetic.coupling import coupling_table
run_suite("quick", seed=0, progress=False, results=sys.argv[1])
# the report's coupling table, as build_report(suite_results=...) keeps it: from the coupling
# experiments the suite's coupling checks just ran (cached in this process), not a second run
coupling_table(0, "quick", results=Path(sys.argv[1]) / COUPLING_TABLE_FOLDER)
# and those experiments themselves, for the coupling module's doctest (shared_coupling_experiments)
import pickle
from dropmuon.theory._io import write_bytes_atomic
from dropmuon.verification.synthetic.coupling import _experiments
write_bytes_atomic(Path(sys.argv[1]) / "coupling-experiments.pickle", pickle.dumps(_experiments(0, "quick")))
"""


def _runs_everything(config) -> bool:
    """Whether this session runs the whole suite (``pytest``, ``pytest tests``, ``make test``): no
    argument, or only the configured ``testpaths`` (pytest fills ``config.args`` with them when
    none is given: ``tests`` and ``README.md``), the tests folder or the project root."""
    whole = {"tests", str(config.rootpath / "tests"), str(config.rootpath), "."}
    whole |= {str(p) for p in config.getini("testpaths")} | {str(config.rootpath / p) for p in config.getini("testpaths")}
    return not config.args or {str(a).rstrip("/") or "/" for a in config.args} <= whole


def pytest_sessionstart(session):
    """With several xdist workers and the whole suite selected, the controller starts the
    session's quick suite at once in a process of its own, holding the suite's lock: it is then
    computed beside the first tests instead of by the first worker that needs it while the other
    waits on the lock (~45 s of a 2-core machine left idle). The workers' :func:`quick_suite_folder`
    takes the lock when that process exits and reads its files back; were it to fail, the worker
    computes what is missing itself (the execution layer's resume), and any error shows there."""
    import subprocess
    import sys

    config = session.config
    workers = getattr(config.option, "numprocesses", None)
    if os.environ.get("PYTEST_XDIST_WORKER") or not (isinstance(workers, int) and workers >= 2) or config.option.markexpr \
            or not _runs_everything(config):
        return
    base = config._tmp_path_factory.getbasetemp()  # the workers' session_dir: their basetemps' parent
    lock = open(base / _QUICK_LOCK, "a")
    fcntl.flock(lock, fcntl.LOCK_EX)  # taken before the child starts: no worker can slip in first
    try:
        # the child shares the locked file description, so the lock is released when it exits
        config._quick_suite_child = subprocess.Popen(
            [sys.executable, "-c", _QUICK_SUITE_SCRIPT, str(base / _QUICK_FOLDER)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(lock.fileno(),))
    finally:
        lock.close()


def pytest_sessionfinish(session):
    child = getattr(session.config, "_quick_suite_child", None)
    if child is not None and child.poll() is None:  # a session cut short: do not leave it running
        child.kill()
        child.wait()


@pytest.fixture(scope="session")
def quick_suite_folder(tmp_path_factory):
    """The task files of the quick verification suite at seed 0 (``run_suite(..., results=)``),
    computed once per test session — by the first worker that asks, the others read them back
    (the execution layer's resume, itself tested in test_execution) — for the tests that run
    the same suite through another door: the CLI, the report, distributed execution."""
    from dropmuon.verification import run_suite

    folder = session_dir(tmp_path_factory) / _QUICK_FOLDER
    with _exclusive(session_dir(tmp_path_factory) / _QUICK_LOCK):
        run_suite("quick", seed=0, progress=False, results=folder)
    return folder


@pytest.fixture
def shared_coupling_experiments(tmp_path_factory, monkeypatch):
    """The coupling experiments at seed 0, quick size (``coupling._experiments(0, "quick")``, ~10 s
    of CPU), as the session's quick-suite process computed them for its coupling checks, where it
    ran (the whole suite in several workers): a test that runs ``coupling_checks()`` through
    another door (its docstring's example) then uses that run instead of repeating it. Elsewhere
    (one file, one worker) nothing is patched and the experiments are computed as usual."""
    import pickle

    from dropmuon.verification.synthetic import coupling

    folder = session_dir(tmp_path_factory) / _QUICK_FOLDER
    with _exclusive(session_dir(tmp_path_factory) / _QUICK_LOCK):  # the quick-suite process holds it until done
        saved = folder / "coupling-experiments.pickle"
        if not saved.exists():
            return
        shared = pickle.loads(saved.read_bytes())
    original = coupling._experiments
    monkeypatch.setattr(coupling, "_experiments",
                        lambda seed, size: shared if (seed, size) == (0, "quick") else original(seed, size))


@pytest.fixture(scope="session")
def quick_suite_by_task(quick_suite_folder):
    """The quick suite's checks grouped by task label (``tight T1 …``, ``T3 spectral noise`` …),
    read back from the session's task files: a test of one task's checks asserts on the run
    every other door (the CLI, the report) also reads, instead of running the task again."""
    from dropmuon.verification.runs.execution import run_tasks
    from dropmuon.verification.synthetic.suites import _decode_checks, _encode_checks, _tasks, suite_tasks

    per_task = run_tasks(suite_tasks("quick", 0), results=quick_suite_folder, encode=_encode_checks,
                         decode=_decode_checks, manifest={"suite": "quick", "seed": 0}, progress=False)
    labels = [label for label, _ in _tasks("quick", 0)]
    assert len(labels) == len(per_task) == len(set(labels))
    return dict(zip(labels, per_task))


#: the longest tests (≥ ~8 s each on an idle 2-core machine with two xdist workers, measured
#: 2026-12-07) and the modules whose many tests add up (figure rendering and layout, multi-process
#: and Dask execution, the solvers' property searches, the torch CLI), marked ``slow`` here in one
#: place: ``make test`` runs them, ``make test-fast`` (the edit loop, ≤ 90 s) leaves them out.
#: Every test that reads the session's quick suite is slow too (the suite takes ~55 s to compute).
#: A node-id prefix that matches no collected test is an error.
SLOW = (
    "tests/figures/test_all_figures.py::",
    "tests/figures/test_verification_plots.py::",
    "tests/figures/test_theory_plots.py::",
    "tests/torchside/test_distributed.py::",
    "tests/torchside/test_frontend.py::",
    "tests/torchside/test_train_cli.py::",
    "tests/test_execution.py::",
    "tests/test_coupling.py::",
    "tests/solvers/test_certified_optimum.py::",
    "tests/solvers/test_properties.py::",
    "tests/solvers/test_extremes.py::",
    "tests/verification/test_separable_exact.py::",
    "tests/figures/test_report.py::",
    "tests/figures/test_torch_plots.py::test_both_figures_read_a_real_tiny_experiment",
    "tests/test_theorems.py::test_numeric_equals_sympy",
    "tests/test_theorems.py::test_against_reference_formulas",
    "tests/test_doctests.py::test_docstring_examples[dropmuon.verification.synthetic.coupling]",
    "tests/verification/test_dropmuon.py::test_exact_paths_against_monte_carlo",
    "tests/verification/test_checks.py::test_random_instances_are_reproducible",
    "tests/torchside/test_speed_options.py::test_costs_of_a_compiled_model_are_timed_on_its_compiled_steps",
    "tests/torchside/test_regimes.py::",
    "tests/torchside/test_training.py::test_experiment_runs_summarises_and_resumes",
    "tests/torchside/test_training.py::test_experiment_killed_part_way_resumes_without_loss_or_duplicates",
    "tests/torchside/test_preregistration.py::test_predictions_are_written_with_their_digest_before_the_first_run",
)
_QUICK_SUITE = {"quick_suite_folder", "quick_suite_records", "quick_suite_by_task"}


#: the test files that take the most CPU (≥ ~7 s each with two xdist workers on an idle 2-core
#: machine, measured 2026-12-07), longest first. They are collected first, so that pytest-xdist
#: (make test: ``--dist loadfile --no-loadscope-reorder``) hands them out first and the small files
#: fill in at the end: the two workers then finish within seconds of each other (longest job
#: first), where handing out by test count left one idle for ~15 s. Balance only: no test depends
#: on the order, and a file missing here just runs later.
HEAVY_FIRST = (
    "tests/figures/test_report.py", "tests/test_execution.py", "tests/torchside/test_distributed.py",
    "tests/test_theorems.py", "tests/torchside/test_train_cli.py", "tests/figures/test_all_figures.py",
    "tests/test_doctests.py", "tests/solvers/test_properties.py", "tests/figures/test_theory_plots.py",
    "tests/torchside/test_training.py", "tests/torchside/test_regimes.py", "tests/solvers/test_certified_optimum.py",
    "tests/verification/test_separable_exact.py", "tests/figures/test_torch_plots.py",
    "tests/solvers/test_extremes.py", "tests/torchside/test_frontend.py", "tests/torchside/test_preregistration.py",
    "tests/test_coupling.py", "tests/torchside/test_speed_options.py",
)


def _test_file(item) -> str:
    """The file of a collected test, as its node id names it (``tests/x/test_y.py``)."""
    return item.nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    rank = {f: i for i, f in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(_test_file(item), len(rank)))  # stable: files stay whole
    used = set()
    for item in items:
        hit = [p for p in SLOW if item.nodeid.startswith(p)]
        used.update(hit)
        if hit or _QUICK_SUITE & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    if _runs_everything(config) and items and (stale := [p for p in SLOW if p not in used]):
        raise pytest.UsageError(f"tests/conftest.py SLOW names tests that do not exist: {stale}")
    files = {_test_file(item) for item in items}
    if _runs_everything(config) and items and (stale := [f for f in HEAVY_FIRST if f not in files]):
        raise pytest.UsageError(f"tests/conftest.py HEAVY_FIRST names test files that do not exist: {stale}")


@pytest.fixture(scope="session")
def quick_suite_records(quick_suite_by_task):
    """The quick verification suite at seed 0 as JSON-ready records, in the suite's order,
    computed once per session (:func:`quick_suite_folder`): several tests (the CLI, the report,
    distributed execution) compare their own run with this one."""
    return [r.as_dict() for rs in quick_suite_by_task.values() for r in rs]
