"""Results on disk and runs that resume (issue 14, "Files"): files readable by others (the umask is
respected), damaged task files recomputed with a warning naming them, a changed configuration
refused with a short diff and started afresh with ``resume=False``, bad sweep files refused with a
one-line ``ValueError``, a lost Dask scheduler reported as :class:`SchedulerLost`, and no local
worker left behind when the parent is killed."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import pytest

from dropmuon.theory._io import current_umask, write_bytes_atomic, write_json_atomic, write_text_atomic
from dropmuon.verification.runs.execution import (
    DamagedResult,
    ManifestMismatch,
    SchedulerLost,
    Task,
    manifest_changes,
    run_tasks,
)
from dropmuon.verification.runs.sweep import MAX_K, load_sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]

SWEEP = {
    "name": "files",
    "K": 2,
    "seeds": [0],
    "theorems": ["smooth-deterministic"],
    "problems": [{"name": "quad", "kind": "separable-quadratic", "curvature": [1.0, 4.0],
                  "shapes": [[2, 2], [2, 1]], "norms": "frobenius"}],
    "distributions": [{"name": "full", "kind": "full"}],
}


def _square(x):
    return x * x


def _cube(x):
    return x * x * x


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


# -- 1. permissions -------------------------------------------------------------------------------

@pytest.mark.parametrize("umask, want", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, want):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        assert _mode(write_text_atomic(tmp_path / "a.txt", "x")) == want
        assert _mode(write_json_atomic(tmp_path / "sub" / "b.json", {"a": 1})) == want
        assert _mode(write_bytes_atomic(tmp_path / "c.bin", b"\x00\xff")) == want
    finally:
        os.umask(old)


def test_bytes_are_written_exactly_and_text_as_utf8(tmp_path):
    data = bytes(range(256))
    assert write_bytes_atomic(tmp_path / "d.bin", data).read_bytes() == data
    # the radii's symbols in a report: UTF-8 whatever the locale's encoding
    assert write_text_atomic(tmp_path / "e.md", "η/π_i\n").read_bytes() == "η/π_i\n".encode("utf-8")
    assert not list(tmp_path.glob("*.tmp"))


def test_a_rewrite_keeps_the_permissions_of_the_file_it_replaces(tmp_path):
    p = tmp_path / "r.json"
    write_json_atomic(p, 1)
    os.chmod(p, 0o640)
    write_json_atomic(p, 2)
    assert _mode(p) == 0o640 and json.loads(p.read_text()) == 2
    assert not list(tmp_path.glob("*.tmp"))


def test_task_results_and_manifest_are_readable_by_others(tmp_path):
    old = os.umask(0o022)
    try:
        run_tasks([Task("t0", _square, (3,))], results=tmp_path, manifest="m", progress=False)
    finally:
        os.umask(old)
    assert _mode(tmp_path / "t0.json") == 0o644 and _mode(tmp_path / "manifest.json") == 0o644


# -- 2. damaged task files ------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "empty", "wrong structure"])
def test_a_damaged_task_file_is_recomputed_with_a_warning(tmp_path, damage):
    tasks = [Task(f"t{i}", _square, (i,)) for i in range(4)]
    run_tasks(tasks, results=tmp_path, manifest="m", progress=False)
    bad = tmp_path / "t2.json"
    bad.write_text({"truncated": '{"rows": [1, 2', "empty": "", "wrong structure": '{"rows": "no"}'}[damage])
    before = (tmp_path / "t1.json").stat().st_mtime_ns

    def decode(v):
        if not isinstance(v, int):
            raise ValueError("not a number")
        return v

    with pytest.warns(DamagedResult, match="t2.json") as rec:
        assert run_tasks(tasks, results=tmp_path, manifest="m", decode=decode, progress=False) == [0, 1, 4, 9]
    assert len(rec) == 1 and "running that task again" in str(rec[0].message)
    assert json.loads(bad.read_text()) == 4
    assert (tmp_path / "t1.json").stat().st_mtime_ns == before  # intact ones not redone


def test_a_damaged_sweep_point_is_recomputed(tmp_path):
    first = run_sweep(SWEEP, tmp_path, progress=False)
    (point,) = (tmp_path / "tasks").glob("quad--*.json")
    point.write_text('{"status": "ok"}')  # valid JSON, not a list of rows
    with pytest.warns(DamagedResult, match=point.name):
        again = run_sweep(SWEEP, tmp_path, progress=False)
    assert again["rows"] == first["rows"]


def _no_checks():
    return []


def test_a_damaged_suite_task_is_recomputed(tmp_path):
    from dropmuon.verification.synthetic.suites import _decode_checks, _encode_checks

    tasks = [Task("0000", _no_checks)]
    run_tasks(tasks, results=tmp_path, manifest="x", encode=_encode_checks, decode=_decode_checks, progress=False)
    for text in ("[1, 2]", '{"a": 1}', '[{"name": "x"}]'):
        (tmp_path / "0000.json").write_text(text)
        with pytest.warns(DamagedResult, match="0000.json"):
            assert run_tasks(tasks, results=tmp_path, manifest="x", encode=_encode_checks, decode=_decode_checks,
                             progress=False) == [[]]


# -- 3. a changed configuration ---------------------------------------------------------------------

def _big_manifest(**change):
    m = {"sweep": {"name": "big", "K": 5, "seeds": list(range(20)), "theorems": ["a", "b", "c"],
                   "problems": [{"name": f"p{i}", "curvature": [1.0 + i, 2.0, 3.0], "shapes": [[3, 4], [4, 5]],
                                 "norms": "spectral"} for i in range(12)],
                   "distributions": [{"name": "uniform", "kind": "uniform"}]}}
    for path, value in change.items():
        d = m["sweep"]
        *head, last = path.split("__")
        for k in head:
            d = d[int(k)] if k.isdigit() else d[k]
        d[int(last) if last.isdigit() else last] = value
    return m


def test_a_changed_configuration_gives_a_short_diff(tmp_path):
    tasks = [Task("t0", _square, (2,))]
    old = _big_manifest()
    assert len(json.dumps(old)) > 1000
    run_tasks(tasks, results=tmp_path, manifest=old, progress=False)
    with pytest.raises(ManifestMismatch) as e:
        run_tasks(tasks, results=tmp_path, manifest=_big_manifest(K=7), progress=False)
    msg = str(e.value)
    assert isinstance(e.value, ValueError) and len(msg) < 300 and "\n" not in msg
    assert "sweep.K: 5 → 7" in msg and "--no-resume" in msg
    assert e.value.changes == [("sweep.K", 5, 7)]
    with pytest.raises(ManifestMismatch, match=r"sweep\.problems\[3\]\.curvature\[0\]: 4\.0 → 9\.5") as e:
        run_tasks(tasks, results=tmp_path, manifest=_big_manifest(problems__3__curvature__0=9.5), progress=False)
    assert len(str(e.value)) < 300


def test_a_diff_of_many_keys_is_truncated():
    old = {"a": list(range(5)), "b": {"x": "y" * 500}, "c": 1, "d": 2, "e": 3}
    new = {"a": list(range(6)), "b": {"x": "z" * 500}, "c": 2, "d": 3, "f": 4}
    changes = manifest_changes(old, new)
    assert [k for k, _, _ in changes] == ["a", "b.x", "c", "d", "e", "f"]
    from dropmuon.verification.runs.execution import _mismatch_message

    msg = _mismatch_message(Path("/r"), changes)
    assert len(msg) < 300 and "and 3 more" in msg and "…" in msg


def test_no_resume_starts_afresh_in_the_same_folder(tmp_path):
    tasks = [Task(f"t{i}", _square, (i,)) for i in range(3)]
    run_tasks(tasks, results=tmp_path, manifest={"power": 2}, progress=False)
    new = [Task(f"t{i}", _cube, (i,)) for i in range(3)]
    with pytest.raises(ManifestMismatch):
        run_tasks(new, results=tmp_path, manifest={"power": 3}, progress=False)
    assert run_tasks(new, results=tmp_path, manifest={"power": 3}, resume=False, progress=False) == [0, 1, 8]
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"power": 3}
    assert json.loads((tmp_path / "t2.json").read_text()) == 8
    # and the new run now resumes: its results are read back
    assert run_tasks(new, results=tmp_path, manifest={"power": 3}, progress=False) == [0, 1, 8]


def test_no_resume_then_a_kill_does_not_mix_old_results_in(tmp_path):
    from dropmuon.verification.runs.execution import InjectedFailure

    tasks = [Task(f"t{i}", _square, (i,)) for i in range(4)]
    run_tasks(tasks, results=tmp_path, manifest={"power": 2}, progress=False)
    new = [Task(f"t{i}", _cube, (i,)) for i in range(4)]
    with pytest.raises(InjectedFailure):
        run_tasks(new, results=tmp_path, manifest={"power": 3}, resume=False, progress=False, fail_after=2)
    assert run_tasks(new, results=tmp_path, manifest={"power": 3}, progress=False) == [0, 1, 8, 27]


def test_sweep_no_resume_with_a_changed_configuration(tmp_path):
    run_sweep(SWEEP, tmp_path, progress=False)
    changed = dict(SWEEP, K=3)
    with pytest.raises(ValueError, match=r"sweep\.K: 2 → 3"):
        run_sweep(changed, tmp_path, progress=False)
    res = run_sweep(changed, tmp_path, resume=False, progress=False)
    assert json.loads(res["table_json"].read_text())["config"]["K"] == 3


def test_a_damaged_manifest_starts_afresh(tmp_path):
    run_tasks([Task("t0", _square, (2,))], results=tmp_path, manifest="m", progress=False)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.warns(DamagedResult, match="manifest.json"):
        assert run_tasks([Task("t0", _cube, (2,))], results=tmp_path, manifest="m", progress=False) == [8]


# -- 4. bad sweep files ------------------------------------------------------------------------------

def _one_line_value_error(cfg, match):
    with pytest.raises(ValueError, match=match) as e:
        load_sweep(cfg)
    assert "\n" not in str(e.value)


def test_a_sweep_problem_without_shapes_names_the_field(tmp_path):
    prob = {k: v for k, v in SWEEP["problems"][0].items() if k != "shapes"}
    _one_line_value_error(dict(SWEEP, problems=[prob]), r"problems #1 \(quad\): missing field\(s\) \['shapes'\]")
    f = tmp_path / "s.toml"
    f.write_text('K = 2\ntheorems = ["smooth-deterministic"]\n[[problems]]\nname = "c"\nkind = "l0l1-radial"\n'
                 'c = [1.0]\n[[distributions]]\nname = "u"\nkind = "uniform"\n')
    _one_line_value_error(f, r"missing field\(s\) \['a', 'shapes'\]")
    _one_line_value_error(dict(SWEEP, distributions=[{"name": "r", "kind": "rpt"}]), r"\['start_probs'\]")


def test_sweep_values_of_the_wrong_structure_are_one_line_errors():
    _one_line_value_error(dict(SWEEP, theorem_options={"smooth-deterministic": 3}),
                          "theorem_options.smooth-deterministic: must be a table")
    _one_line_value_error(dict(SWEEP, problems=[3]), r"problems #1: must be a table")
    _one_line_value_error(dict(SWEEP, seeds="0"), "seeds")


def test_an_absurd_K_is_refused_up_front_and_a_large_sweep_warns():
    with pytest.raises(ValueError, match=r"K = 1000000 is above the limit 100000.*1000 Monte Carlo paths"):
        load_sweep(dict(SWEEP, K=10**6))
    with pytest.warns(RuntimeWarning, match=r"K = 100000 is about 2.0e8 optimizer steps \(~16.7 core-hours\)"):
        load_sweep(dict(SWEEP, K=MAX_K, seeds=[0, 1]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_sweep(SWEEP)  # a small sweep: no warning


# -- 5. losing the Dask scheduler ---------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_losing_the_scheduler_raises_scheduler_lost(tmp_path):
    pytest.importorskip("distributed")
    from distributed import Client

    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    sched = subprocess.Popen(dask + ["--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", addr, "--nthreads", "1",
                                   "--nworkers", "1", "--no-nanny", "--dashboard-address", ":0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        with Client(addr, timeout="30s") as c:
            c.wait_for_workers(1, timeout=60)
        results = tmp_path / "r"

        def kill_after_first_result():
            while not list(results.glob("t*.json")):
                time.sleep(0.05)
            sched.kill()

        threading.Thread(target=kill_after_first_result, daemon=True).start()
        tasks = [Task(f"t{i}", time.sleep, (0.5,)) for i in range(20)]
        with pytest.raises(SchedulerLost) as e:
            run_tasks(tasks, results=results, scheduler=addr, manifest="m", progress=False)
        msg = str(e.value)
        assert addr in msg and "saved" in msg and "re-run resumes" in msg and "\n" not in msg
        assert isinstance(e.value, RuntimeError) and e.value.__cause__ is None
        assert list(results.glob("t*.json"))  # what arrived is on disk
    finally:
        for p in (worker, sched):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait(timeout=30)


# -- 6. no orphaned workers ---------------------------------------------------------------------------

SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dropmuon.verification.runs.execution import Task, run_tasks

    def slow(marker):
        Path(marker).write_text("running")
        time.sleep(120)
        return 0

    if __name__ == "__main__":
        d = Path(sys.argv[1])
        run_tasks([Task(f"t{i}", slow, (str(d / f"m{i}"),)) for i in range(4)], jobs=2, results=d / "r",
                  progress=False)
""")


def _alive(proc) -> bool:
    import psutil

    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_workers_exit_when_the_parent_is_killed(tmp_path):
    psutil = pytest.importorskip("psutil")
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    parent = subprocess.Popen([sys.executable, str(script), str(tmp_path)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("m*"))) < 2:  # both workers are running a task
            assert parent.poll() is None, parent.stderr.read().decode()
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.2)
        children = psutil.Process(parent.pid).children(recursive=True)
        assert len(children) >= 2
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [(c.pid, c.cmdline()) for c in children if _alive(c)]
        assert not left, f"processes left behind: {left}"
    finally:
        if parent.poll() is None:
            parent.kill()
        for c in locals().get("children", []):
            if _alive(c):
                c.kill()


# -- the torch closed loop's saved files ----------------------------------------------------------------

@pytest.mark.parametrize("text", ["", '{"settings": ', "[1, 2]"])
def test_a_damaged_calibration_is_measured_again(tmp_path, text):
    from dropmuon.verification.torchside.experiment import _saved_calibration

    p = tmp_path / "calibration.json"
    assert _saved_calibration(p) is None  # none yet: measure, without a warning
    p.write_text(text)
    with pytest.warns(RuntimeWarning, match="calibration.json.*measuring it again"):
        assert _saved_calibration(p) is None
    p.write_text('{"settings": {"a": 1}}')
    assert _saved_calibration(p) == {"settings": {"a": 1}}


def test_a_damaged_training_run_record_is_run_again(tmp_path):
    from dropmuon.verification.torchside.experiment import _decode_run

    good = {"sampling": "uniform", "seed": 0, "calibration": "abc", "steps": 3}
    run_tasks([Task("uniform-seed0", dict, (), good)], results=tmp_path, manifest="m", decode=_decode_run,
              progress=False)
    (tmp_path / "uniform-seed0.json").write_text('{"sampling": "uniform"}')
    with pytest.warns(DamagedResult, match="uniform-seed0.json"):
        assert run_tasks([Task("uniform-seed0", dict, (), good)], results=tmp_path, manifest="m",
                         decode=_decode_run, progress=False) == [good]
