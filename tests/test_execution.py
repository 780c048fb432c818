"""The execution layer: local processes (joblib) and a real Dask cluster (a scheduler and two worker
processes on the loopback interface, no mocks) give the same results as a serial run; a run that
fails part-way resumes without losing or duplicating results; bad input is refused."""

import json
import math

import pytest

from dropmuon.theory import theorems
from dropmuon.verification import run_suite
from dropmuon.verification.runs.execution import InjectedFailure, Task, run_tasks, scheduler_address
from dropmuon.verification.runs.sweep import load_sweep, run_sweep
from dropmuon.verification.synthetic.suites import quick_tasks, tight_instances

distributed = pytest.importorskip("distributed")

SWEEP = {
    "name": "test",
    "K": 3,
    "seeds": [0, 1],
    "theorems": ["smooth-deterministic", "smooth-constant-radius", "l0l1-deterministic"],
    "problems": [
        {"name": "quad", "kind": "separable-quadratic", "curvature": [1.0, 4.0, 2.0],
         "shapes": [[3, 4], [2, 3], [4, 2]], "norms": "spectral"},
        {"name": "cosh", "kind": "l0l1-radial", "c": [1.0, 2.0], "a": [1.0, 0.5], "shapes": [[2, 2], [3, 1]],
         "norms": "frobenius", "x0_scale": 2.0},
    ],
    "distributions": [{"name": "uniform", "kind": "uniform"}, {"name": "full", "kind": "full"}],
}


@pytest.fixture(scope="module")
def cluster():
    """A real scheduler and two single-threaded worker processes on 127.0.0.1."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    return run_sweep(SWEEP, tmp_path_factory.mktemp("serial"), progress=False)


def _same(rows_a, rows_b):
    """Row lists equal, NaN equal to NaN (exact: the same computations in other processes)."""
    assert len(rows_a) == len(rows_b)
    for a, b in zip(rows_a, rows_b):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], float) and math.isnan(a[k]):
                assert isinstance(b[k], float) and math.isnan(b[k])
            else:
                assert a[k] == b[k], (k, a, b)


def test_sweep_on_a_dask_cluster_equals_the_serial_run(cluster, serial, tmp_path):
    res = run_sweep(SWEEP, tmp_path, scheduler=cluster, progress=False)
    _same(res["rows"], serial["rows"])
    assert res["summary"] == serial["summary"]
    assert res["summary"]["points"] == 2 * 3 * 2 * 2 and res["summary"]["failed"] == 0
    assert res["summary"]["not_applicable"] > 0  # T1/T1' on the cosh problem, T2 on the quadratic
    # the table on disk: CSV and JSON with one row per checked statement, in grid order
    table = json.loads(res["table_json"].read_text())
    assert len(table["rows"]) == len(serial["rows"])
    assert res["table_csv"].read_text().count("\n") == len(serial["rows"]) + 1


def test_scheduler_from_the_environment(cluster, serial, tmp_path, monkeypatch):
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster)
    assert scheduler_address(None) == cluster
    res = run_sweep(SWEEP, tmp_path, progress=False)  # no scheduler argument: the variable decides
    _same(res["rows"], serial["rows"])


def test_local_processes_equal_the_serial_run(serial, tmp_path):
    res = run_sweep(SWEEP, tmp_path, jobs=2, progress=False)
    _same(res["rows"], serial["rows"])


@pytest.mark.parametrize("where", ["serial", "processes", "dask"])
def test_a_failure_part_way_then_a_rerun_loses_and_duplicates_nothing(where, cluster, serial, tmp_path):
    kw = {"serial": {}, "processes": {"jobs": 2}, "dask": {"scheduler": cluster}}[where]
    with pytest.raises(InjectedFailure):
        run_sweep(SWEEP, tmp_path, progress=False, fail_after=5, **kw)
    saved = sorted(p.name for p in (tmp_path / "tasks").glob("*--s*.json"))
    # serially exactly the five before it; in parallel the failure can be reported before results that
    # finished earlier are collected, and tasks in flight may finish too
    assert len(saved) == 5 if where == "serial" else len(saved) < 24
    first = {p: (tmp_path / "tasks" / p).read_text() for p in saved}
    res = run_sweep(SWEEP, tmp_path, progress=False, **kw)
    _same(res["rows"], serial["rows"])  # nothing lost, nothing twice
    assert len(list((tmp_path / "tasks").glob("*--s*.json"))) == 24
    assert all((tmp_path / "tasks" / p).read_text() == t for p, t in first.items())  # finished ones not redone
    assert not list(tmp_path.rglob("*.tmp"))


def test_the_suite_runs_the_same_everywhere(cluster, tmp_path, quick_suite_by_task):
    # two theorems' checks on the cluster: T1's (tight instances and quick checks on every problem
    # type, coupled and deep-linear ones included) and T2's ((L0,L1) problems): 18 tasks through
    # the scheduler, the encoding and the files. Every other task of the suite returns the same
    # CheckResult records through the same Task, encoding and transport code; running all 60 here
    # repeated that path at ~4x the cost (the session's local run, read back below, computes them all)
    some = [theorems["smooth-deterministic"], theorems["l0l1-deterministic"]]
    labels = [label for label, _ in tight_instances(some) + quick_tasks(0, some)]
    assert len(labels) == 18 and {"tight T1 #1", "tight T2 #1", "T1 coupled full", "T2 cosh spectral"} <= set(labels)
    local = [r.as_dict() for label in labels for r in quick_suite_by_task[label]]  # the session's local run
    everyone = [t.name for t in some]
    remote = run_suite("quick", progress=False, scheduler=cluster, results=tmp_path, theorems=everyone)
    again = run_suite("quick", progress=False, results=tmp_path, theorems=everyone)  # read back from the files

    def norm(d):
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

    assert [norm(r.as_dict()) for r in remote] == [norm(d) for d in local]
    assert [norm(r.as_dict()) for r in again] == [norm(d) for d in local]
    with pytest.raises(ValueError, match="holds results of another run") as e:
        run_suite("quick", seed=1, progress=False, results=tmp_path, theorems=everyone)
    assert "seed: 0 → 1" in str(e.value) and len(str(e.value)) < 300  # the changed key, not both manifests
    # --no-resume: afresh over the other run's files (one theorem's checks: the same tasks and code path as
    # the whole suite, at a fraction of its cost), equal to the same checks computed without a folder
    one = ["smooth-deterministic"]
    fresh = run_suite("quick", seed=1, progress=False, results=tmp_path, resume=False, theorems=one)
    assert [norm(r.as_dict()) for r in fresh] == [norm(r.as_dict()) for r in
                                                  run_suite("quick", seed=1, progress=False, theorems=one)]
    assert len(fresh) > 5 and {r.theorem for r in fresh} == set(one)


def _square(x):
    return x * x


def test_run_tasks_contract_and_bad_input(tmp_path, monkeypatch):
    tasks = [Task(f"t{i}", _square, (i,)) for i in range(5)]
    assert run_tasks(tasks, progress=False) == [0, 1, 4, 9, 16]
    assert run_tasks(tasks, jobs=2, progress=False, results=tmp_path, manifest="m") == [0, 1, 4, 9, 16]
    assert json.loads((tmp_path / "t3.json").read_text()) == 9
    with pytest.raises(ValueError, match="task keys must be unique; 't0' appears 2 times"):
        run_tasks([tasks[0], tasks[0]])
    with pytest.raises(ValueError, match="jobs = 0"):
        run_tasks(tasks, jobs=0)
    with pytest.raises(ValueError, match="a task key must be"):
        Task("a/b", _square)
    with pytest.raises(ValueError, match="tcp://HOST:PORT"):
        scheduler_address("localhost 8786")
    # an address nobody answers at is an environment error (exit 3), found at once by a plain
    # socket rather than after Dask's ~30 s of retries
    from dropmuon.verification.runs.execution import SchedulerUnreachable

    def no_client(*a, **k):
        raise AssertionError("Dask's client was started (it retries until its timeout)")

    monkeypatch.setattr(distributed, "Client", no_client)
    with pytest.raises(SchedulerUnreachable, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        run_tasks(tasks, scheduler="tcp://127.0.0.1:9", progress=False, connect_timeout=20.0)


def test_sweep_configuration_errors(tmp_path):
    bad = dict(SWEEP, distributions=[{"name": "r", "kind": "rpt", "start_probs": [0.5, 0.5]}])
    with pytest.raises(ValueError, match="distribution 'r'.*has 2 layers but problem 'quad' has 3"):
        load_sweep(bad)
    with pytest.raises(ValueError, match="unknown theorem 'T9'"):
        load_sweep(dict(SWEEP, theorems=["T9"]))
    with pytest.raises(ValueError, match=r"problems #1 \(quad\).*unknown field\(s\) \['curvatures'\]"):
        load_sweep(dict(SWEEP, problems=[{**SWEEP["problems"][0], "curvatures": [1, 2, 3]}]))
    with pytest.raises(ValueError, match="K: a positive integer"):
        load_sweep(dict(SWEEP, K=0))
    f = tmp_path / "s.toml"
    f.write_text("K = [")
    with pytest.raises(ValueError, match="is not valid TOML"):
        load_sweep(f)


def test_cli_sweep_and_execution_options(tmp_path, capsys):
    from pathlib import Path

    from dropmuon.figures.cli import main

    example = Path(__file__).resolve().parents[1] / "docs" / "sweep-example.toml"
    assert main(["sweep", str(example), "--out", str(tmp_path), "--jobs", "2", "--no-progress", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["summary"]["failed"] == 0 and out["summary"]["checks"] > 0
    assert (tmp_path / "table.csv").exists() and out["table_json"] == str(tmp_path / "table.json")
    assert main(["verify", "--jobs", "0"]) == 2
    assert "--jobs must be a positive integer or -1" in capsys.readouterr().err
    assert main(["sweep", str(example), "--scheduler", "localhost:8786"]) == 2
    assert "tcp://HOST:PORT" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read the sweep configuration" in capsys.readouterr().err


def test_a_sweep_counts_each_verdict_apart(tmp_path, monkeypatch):
    """The sweep's summary and table keep within-tolerance and inconclusive checks apart from
    violations and from real passes; any check not shown to hold is 'failed' (exit 1)."""
    import dropmuon.verification.synthetic.checks as checks
    from dropmuon.verification.synthetic.checks import CheckResult

    verdicts = iter(["holds", "within-tolerance", "inconclusive", "violated"] * 10)

    def fake(theorem, *a, **k):
        v = next(verdicts)
        return [CheckResult("c", theorem, "rate", "p", 1.0, 1.0, 1.0, v == "holds", "mc", 0.9, 1.1, 10, status=v)]

    monkeypatch.setattr(checks, "check_theorem", fake)
    cfg = dict(SWEEP, theorems=["smooth-deterministic"], problems=SWEEP["problems"][:1], seeds=[0, 1])
    res = run_sweep(cfg, tmp_path, progress=False)
    s = res["summary"]
    assert (s["checks"], s["holds"], s["within_tolerance"], s["inconclusive"], s["violated"], s["failed"]) == (
        4, 1, 1, 1, 1, 3)
    table = json.loads(res["table_json"].read_text())
    assert sorted(r["verdict"] for r in table["rows"]) == sorted(["holds", "within-tolerance", "inconclusive",
                                                                  "violated"])
    assert "verdict" in res["table_csv"].read_text().splitlines()[0].split(",")
