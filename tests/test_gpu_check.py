"""benchmarks/gpu_check.py: its argument handling, the one-line refusal without a GPU, the
runner (budget, report written as it goes, a failing check reported without stopping the
others), and every check run on the fake device in its quick form."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import nnlite

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module          # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def test_arguments_are_checked_with_one_line_errors(gpu_check, capsys):
    for argv, message in ((["--only", "nope"], "unknown check(s) nope: expected some of"),
                          (["--device", "cpu"], "--device cpu: the checks compare"),
                          (["--device", "tpu"], "unknown device 'tpu'"),
                          (["--budget", "0"], "--budget must be positive")):
        with pytest.raises(SystemExit) as stop:
            gpu_check.parse_args(argv)
        assert stop.value.code == 2
        assert message in capsys.readouterr().err
    assert gpu_check.parse_args(["--device", "cuda:1", "--only", "timing"]).only == ["timing"]


def test_list_names_every_check(gpu_check, capsys):
    assert gpu_check.main(["--list"]) == 0
    out = capsys.readouterr().out
    names = [c.name for c in gpu_check.CHECKS]
    assert {"cupy_tests", "nvrtc_kernels", "train_vs_cpu", "inference", "device_index",
            "timing"} <= set(names)
    assert all(name in out for name in names)


def test_default_report_goes_under_out(gpu_check, monkeypatch, tmp_path):
    monkeypatch.setenv("OUT", str(tmp_path))
    assert gpu_check.default_report_path() == tmp_path / "gpu_check.md"
    monkeypatch.delenv("OUT")
    assert gpu_check.default_report_path() == Path("gpu_check.md")


@pytest.mark.skipif(nnlite.cuda_available(), reason="checks the no-GPU refusal")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_non_zero(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--report", str(tmp_path / "r.md")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stdout.strip().count("\n") == 0 and "no CUDA device" in done.stdout
    assert not (tmp_path / "r.md").exists()


def test_a_new_check_registers_and_a_failure_is_reported_not_raised(gpu_check, tmp_path):
    @gpu_check.check("always_fails_for_the_test", "raises", 5)
    def broken(device, quick):
        raise RuntimeError("boom")

    try:
        with pytest.raises(ValueError, match="already exists"):
            gpu_check.check("always_fails_for_the_test", "again", 5)(broken)
        result = tmp_path / "result.json"
        gpu_check._run_one("always_fails_for_the_test", "fake", True, str(result))
        written = json.loads(result.read_text())
        assert written["status"] == "ERROR" and "RuntimeError: boom" in written["summary"]
    finally:
        gpu_check.CHECKS[:] = [c for c in gpu_check.CHECKS
                               if c.name != "always_fails_for_the_test"]


def test_runner_writes_the_report_through_child_processes(tmp_path):
    report = tmp_path / "sub" / "report.md"
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "fake", "--quick",
                           "--only", "device_index", "--report", str(report)],
                          capture_output=True, text=True, cwd=ROOT)
    text = report.read_text()
    assert "| device_index | pass |" in text, done.stdout + done.stderr
    assert "fake device" in text and "--only device_index" in text
    assert done.returncode == 0


def test_checks_that_no_longer_fit_the_budget_are_skipped(gpu_check, tmp_path):
    """A check starts only with min(20 s, its timeout) of the budget left; the report is
    rewritten after each check and the run does not count as passed."""
    clock = [0.0]
    reports = []

    def child(check, args, timeout):
        clock[0] += 75.0                               # every check takes 75 s
        reports.append(timeout)
        return {"status": "pass", "summary": "ok", "seconds": 75.0}

    report = tmp_path / "r.md"
    code = gpu_check.main(["--device", "fake", "--budget", "160", "--report", str(report),
                           "--only", "nvrtc_kernels", "--only", "inference", "--only", "timing"],
                          run_child=child, clock=lambda: clock[0])
    text = report.read_text()
    assert "| nvrtc_kernels | pass |" in text and "| inference | pass |" in text
    assert "| timing | skipped | 0.0 | not started: 10 s of the budget left |" in text
    assert reports == [60, 60] and code == 1         # each capped by its own timeout


@pytest.mark.parametrize("name", ["cupy_tests", "nvrtc_kernels", "train_vs_cpu", "inference",
                                  "device_index", "timing"])
def test_every_check_runs_on_the_fake_device(gpu_check, name):
    check = next(c for c in gpu_check.CHECKS if c.name == name)
    ok, summary, details = check.run("fake", True)
    assert ok, f"{name}: {summary}\n{details}"
    assert summary and "\n" not in summary
