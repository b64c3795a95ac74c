"""Everything to run first on a lent GPU, in one command, in under 5 minutes.

    python benchmarks/gpu_check.py                        # report: $OUT/gpu_check.md or ./gpu_check.md
    python benchmarks/gpu_check.py --report docs/gpu.md --only nvrtc_kernels --only inference
    python benchmarks/gpu_check.py --device fake --quick  # the same checks on the fake device
    python benchmarks/gpu_check.py --list

Each check is a named function registered in ``CHECKS`` with ``@check(name, description,
timeout_s)``; it gets the device name and ``quick`` and returns ``(ok, summary, details)``
(a one-line summary and Markdown details). To add one (an NCCL check, say), write such a
function below and decorate it: nothing else changes.

Robust on purpose (a device is lent for minutes): every check runs in its own process
with its own timeout (a hang or a CUDA error in one cannot stop the others), the whole
run has a time budget (``--budget``, checks that no longer fit are reported as skipped),
and the Markdown report is rewritten (atomically) after every check, so whatever
finished is on disk even if the run is killed. Exit status: 0 when every check passed,
1 when one failed, 2 when there is no device to check.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass
class Check:
    name: str
    description: str
    timeout_s: float
    run: object


CHECKS: list[Check] = []


def check(name, description, timeout_s):
    """Register the decorated ``fn(device, quick) -> (ok, summary, details)`` as a check."""
    def register(fn):
        if any(c.name == name for c in CHECKS):
            raise ValueError(f"gpu_check: a check named {name!r} already exists")
        CHECKS.append(Check(name, description, timeout_s, fn))
        return fn
    return register


# ------------------------------------------------------------------ helpers for checks
def _sync(device):
    import nnlite

    if device.startswith("cuda"):
        nnlite.backend.cupy.cuda.Device().synchronize()


def _best_seconds(fn, device, repeat):
    fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return min(times), times


def _train_config(device, size, batch, cnum, out_dir, critic_cnum=None):
    from inpainting.training.config import TrainConfig

    return TrainConfig(data="demo", image_size=size, bbox_size=size // 2, max_delta=size // 16,
                       batch_size=batch, cnum=cnum, critic_cnum=critic_cnum or cnum,
                       device=device, out_dir=out_dir, seed=3)


# ------------------------------------------------------------------ the checks
@check("cupy_tests", "the test suite's CuPy-parametrised tests (xp fixture, kernels, "
       "transfers) on the device", 150)
def cupy_tests(device, quick):
    keyword = "fake" if device == "fake" else "cupy or cuda or gpu"
    files = ["tests/test_backend.py"] if quick else []
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", keyword,
               *files]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "(no output)"
    ok = done.returncode == 0 and "passed" in last
    failures = [line for line in lines if line.startswith(("FAILED", "ERROR"))]
    details = f"`{' '.join(command[2:])}`: {last}"
    if failures:
        details += "\n\n" + "\n".join(f"* {line}" for line in failures[:30])
    return ok, last, details


@check("nvrtc_kernels", "the raw im2col/col2im kernels (float32/float64, 32- and 64-bit "
       "indices) against their NumPy twins", 60)
def nvrtc_kernels(device, quick):
    import numpy as np

    from nnlite import backend
    from nnlite.kernels import im2col_cupy as kernels
    from nnlite.conv_geometry import conv_geometry

    rng = np.random.default_rng(0)
    cases = [((2, 3, 9, 8), (4, 3, 3, 3), 1, 1, 1), ((2, 3, 9, 8), (4, 3, 5, 5), 2, 2, 1),
             ((1, 4, 16, 12), (2, 4, 3, 3), 1, 4, 4), ((2, 5, 11, 7), (3, 5, 4, 2), 3, 0, 2)]
    if not quick:
        cases.append(((4, 64, 64, 64), (64, 64, 3, 3), 1, 1, 1))
    xp = backend.get_array_module(backend.to_device(np.zeros(1), device))
    worst, rows = 0.0, []
    for x_shape, w_shape, stride, padding, dilation in cases:
        g = conv_geometry(x_shape, w_shape, stride, padding, dilation)
        for dtype in (np.float32, np.float64):
            x = rng.standard_normal(x_shape).astype(dtype)
            cols_shape = (x_shape[1], g.KH, g.KW, x_shape[0], g.OH, g.OW)
            c = rng.standard_normal(cols_shape).astype(dtype)
            # a GPU runs both widths; the fake device refuses a width the sizes do not call for
            widths = ((kernels.index_type(x.size, c.size),) if device == "fake"
                      else ("int", "long long"))
            for index in widths:
                cols = xp.empty(cols_shape, dtype=dtype)
                _launch_as(kernels, "im2col", index, backend.to_device(x, device), cols, g, xp)
                got = backend.to_device(cols, "cpu")
                im2col_ok = np.array_equal(got, kernels.im2col_twin(x, g))
                out = xp.empty(x_shape, dtype=dtype)
                _launch_as(kernels, "col2im", index, backend.to_device(c, device), out, g, xp)
                diff = float(np.max(np.abs(backend.to_device(out, "cpu")
                                           - kernels.col2im_twin(c, g))))
                worst = max(worst, diff if im2col_ok else float("inf"))
                rows.append(f"| {x_shape} k{g.KH}x{g.KW} s{stride} d{dilation} | "
                            f"{np.dtype(dtype).name} | {index} | {'equal' if im2col_ok else 'DIFFERENT'} "
                            f"| {diff:.2e} |")
    ok = worst < 1e-4
    table = ("| input, kernel | dtype | indices | im2col | col2im max abs diff |\n"
             "|---|---|---|---|---|\n" + "\n".join(rows))
    return ok, f"{len(rows)} launches, worst col2im difference {worst:.2e}", table


def _launch_as(kernels, name, index, source, out, g, xp):
    """Launch kernel ``name`` with the given index width (the code picks one by size)."""
    n, c = (source.shape[:2] if name == "im2col" else (source.shape[3], source.shape[0]))
    integer = kernels.INDEX_TYPES[index]
    args = [xp.ascontiguousarray(source), out, out.size, n, c, g.H, g.W, g.KH, g.KW,
            g.SH, g.SW, g.PT, g.PL, g.DH, g.DW, g.OH, g.OW]
    blocks = max(1, min(kernels.MAX_BLOCKS, -(-out.size // kernels.THREADS)))
    kernels._kernel(name, out.dtype, index, xp)(
        (blocks,), (kernels.THREADS,), tuple(a if hasattr(a, "shape") else integer(a) for a in args))


@check("train_vs_cpu", "training iterations on the device against the same iterations on the "
       "CPU (same seed, same batches)", 120)
def train_vs_cpu(device, quick):
    import numpy as np

    from inpainting.training.train import Trainer
    from nnlite.backend import to_device

    size, batch, cnum, iterations = (32, 2, 4, 1) if quick else (64, 2, 8, 3)
    logs, weights = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for where in ("cpu", device):
            trainer = Trainer(_train_config(where, size, batch, cnum, tmp))
            logs[where] = [trainer.iteration() for _ in range(iterations)]
            weights[where] = {k: to_device(v, "cpu")
                              for k, v in trainer.generator.state_dict().items()}
    worst_loss = max(abs(a[k] - b[k]) / max(abs(a[k]), 1e-3)
                     for a, b in zip(logs["cpu"], logs[device]) for k in a)
    worst_weight = max(float(np.max(np.abs(weights["cpu"][k] - weights[device][k])))
                       for k in weights["cpu"])
    ok = worst_loss < 1e-2 and worst_weight < 1e-3
    rows = "\n".join(f"| {i + 1} | {k} | {a[k]:.6g} | {b[k]:.6g} |"
                     for i, (a, b) in enumerate(zip(logs["cpu"], logs[device])) for k in a)
    summary = (f"{iterations} iterations ({size}x{size}, batch {batch}, cnum {cnum}): worst "
               f"relative loss difference {worst_loss:.2e}, worst weight difference "
               f"{worst_weight:.2e}")
    return ok, summary, f"| iteration | term | cpu | {device} |\n|---|---|---|---|\n{rows}"


@check("inference", "inpainting on the device against the CPU (release width cnum 32)", 60)
def inference(device, quick):
    import numpy as np

    from inpainting.model.inference import inpaint
    from inpainting.model.networks import InpaintGenerator
    from nnlite.backend import to_device

    size, cnum = (64, 8) if quick else (256, 32)
    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
    mask = np.zeros((1, 1, size, size), np.float32)
    mask[..., size // 4:size // 2, size // 3:3 * size // 4] = 1
    outputs = {}
    for where in ("cpu", device):
        generator = InpaintGenerator(cnum, rng=np.random.default_rng(2)).to(where)
        result = inpaint(generator, to_device(image, where), to_device(mask, where))
        outputs[where] = to_device(result.output, "cpu")
    diff = float(np.max(np.abs(outputs["cpu"] - outputs[device])))
    return diff < 1e-3, f"{size}x{size} cnum {cnum}: max abs difference {diff:.2e}", ""


@check("nccl", "NCCL all-reduce of gradients (issue 21): a one-rank NCCLCommunicator against the "
       "mean on the host (several ranks under mpirun)", 60)
def nccl(device, quick):
    from inpainting.training.distributed import nccl_check

    if device == "fake":        # no CUDA: the check must refuse, not pretend
        try:
            nccl_check()
        except RuntimeError as error:
            return True, f"no CUDA here: refused ({error})", ""
        return False, "nccl_check ran without a device", ""
    result = nccl_check()
    summary = (f"{result['ranks']} rank(s), max error {result['max_error']:.2e}, "
               f"{result['seconds_per_allreduce'] * 1e3:.2f} ms per all-reduce of "
               f"{result['elements']:,} floats")
    return bool(result["ok"]), summary, ""


@check("device_index", "'cuda:N' runs on device N, or is refused when N does not exist", 30)
def device_index(device, quick):
    import numpy as np

    from nnlite import backend

    if device == "fake":
        try:
            backend.to_device(np.zeros(2), "cuda:99")
        except (RuntimeError, ValueError) as error:
            return True, f"no CUDA here: refused ({error})", ""
        return False, "cuda:99 was accepted", ""
    count = backend.cuda_device_count()
    lines = []
    for index in range(count):
        array = backend.to_device(np.zeros(2), f"cuda:{index}")
        lines.append(f"cuda:{index} -> device {array.device.id}")
        if array.device.id != index:
            return False, lines[-1], "\n".join(lines)
    try:
        backend.to_device(np.zeros(2), f"cuda:{count}")
        return False, f"cuda:{count} accepted with {count} device(s)", ""
    except ValueError as error:
        lines.append(f"cuda:{count} refused: {error}")
    backend.to_device(np.zeros(1), "cuda:0")
    return True, "; ".join(lines), ""


@check("timing", "seconds per training iteration (batch 16, 256x256, cnum 32) with TF32 off "
       "and on, and per 512x512 inference", 150)
def timing(device, quick):
    import numpy as np

    import nnlite
    from inpainting.model.inference import inpaint
    from inpainting.model.networks import InpaintGenerator
    from inpainting.training.train import Trainer
    from nnlite.backend import to_device

    size, batch, cnum, infer = (32, 2, 4, 64) if quick else (256, 16, 32, 512)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(_train_config(device, size, batch, cnum, tmp,
                                        critic_cnum=cnum if quick else 64))
        for tf32 in (False, True):
            nnlite.set_tf32(tf32)
            best, times = _best_seconds(trainer.iteration, device, 1 if quick else 2)
            rows.append(f"| training iteration, batch {batch}, {size}x{size}, cnum {cnum} | "
                        f"{'on' if tf32 else 'off'} | {best:.3f} | "
                        f"{' '.join(f'{t:.3f}' for t in times)} |")
        nnlite.set_tf32(False)
    generator = InpaintGenerator(32 if not quick else cnum).to(device)
    image = to_device(np.random.default_rng(0).uniform(-1, 1, (1, 3, infer, infer))
                      .astype(np.float32), device)
    mask = np.zeros((1, 1, infer, infer), np.float32)
    mask[..., infer // 4:3 * infer // 4, infer // 4:3 * infer // 4] = 1
    mask = to_device(mask, device)
    best, times = _best_seconds(lambda: inpaint(generator, image, mask), device, 3)
    rows.append(f"| inference {infer}x{infer}, cnum {32 if not quick else cnum} | off | "
                f"{best:.3f} | {' '.join(f'{t:.3f}' for t in times)} |")
    table = "| what | TF32 | best s | runs (s) |\n|---|---|---|---|\n" + "\n".join(rows)
    summary = "; ".join(f"{r.split(' | ')[0].lstrip('| ')} (TF32 {r.split(' | ')[1]}) "
                        f"{r.split(' | ')[2]} s" for r in rows)
    return True, summary, table


# ------------------------------------------------------------------ the runner
def _run_one(name, device, quick, result_path):
    """Child process: run one check, write {"ok", "summary", "details"} as JSON."""
    check_ = next(c for c in CHECKS if c.name == name)
    try:
        ok, summary, details = check_.run(device, quick)
        result = {"status": "pass" if ok else "FAIL", "summary": summary, "details": details}
    except Exception as error:   # reported, never hides the other checks
        import traceback
        result = {"status": "ERROR", "summary": f"{type(error).__name__}: {error}"[:300],
                  "details": "```\n" + traceback.format_exc()[-3000:] + "\n```"}
    Path(result_path).write_text(json.dumps(result))


def _device_line(device):
    import nnlite

    if device == "fake":
        return "fake device (nnlite.fake_device: CuPy semantics on NumPy; no GPU)"
    cupy = nnlite.backend.cupy
    props = cupy.cuda.runtime.getDeviceProperties(nnlite.backend.parse_device(device)[1])
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return (f"{name}, CuPy {cupy.__version__}, CUDA runtime "
            f"{cupy.cuda.runtime.runtimeGetVersion()}, driver {cupy.cuda.runtime.driverGetVersion()}")


def _write_report(path, header, results):
    lines = header + ["", "| check | status | seconds | summary |", "|---|---|---|---|"]
    for name, result in results.items():
        summary = result["summary"].replace("|", "/").replace("\n", " ")
        lines.append(f"| {name} | {result['status']} | {result['seconds']:.1f} | {summary} |")
    for name, result in results.items():
        if result.get("details"):
            lines += ["", f"### {name}", "", result["details"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def default_report_path():
    out = os.environ.get("OUT")
    return Path(out) / "gpu_check.md" if out else Path("gpu_check.md")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", type=Path, default=None,
                        help="Markdown report to write (default: $OUT/gpu_check.md when $OUT "
                             "is set, else ./gpu_check.md)")
    parser.add_argument("--device", default="cuda",
                        help="cuda, cuda:N, or fake (the checks on the fake device; default cuda)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this check (repeatable); --list shows the names")
    parser.add_argument("--quick", action="store_true", help="small sizes (for tests)")
    parser.add_argument("--budget", type=float, default=290.0,
                        help="seconds for the whole run (default 290); checks that no longer "
                             "fit are reported as skipped")
    parser.add_argument("--list", action="store_true", help="list the checks and exit")
    parser.add_argument("--run-one", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [c.name for c in CHECKS]
    unknown = [name for name in args.only if name not in names]
    if unknown:
        parser.error(f"unknown check(s) {', '.join(unknown)}: expected some of {', '.join(names)}")
    if args.budget <= 0:
        parser.error(f"--budget must be positive, got {args.budget}")
    from nnlite.backend import parse_device
    try:
        kind, _ = parse_device(args.device)
    except ValueError as error:
        parser.error(str(error))
    if kind == "cpu":
        parser.error("--device cpu: the checks compare a device against the CPU; use cuda, "
                     "cuda:N or fake")
    return args


def main(argv=None, *, run_child=None, clock=time.monotonic):
    """Run the selected checks, each in a child process, within ``--budget``; the exit status.

    ``run_child(check, args, timeout)`` (returning a result dict) and ``clock()`` (seconds)
    replace the child process and ``time.monotonic``: tests of the budget logic."""
    run_child = run_child or _run_child
    args = parse_args(argv)
    if args.list:
        for c in CHECKS:
            print(f"{c.name:16s} {c.timeout_s:5.0f} s  {c.description}")
        return 0
    if args.run_one:
        _run_one(args.run_one, args.device, args.quick, args.result)
        return 0
    import nnlite

    if args.device != "fake" and not nnlite.cuda_available():
        print(f"gpu_check: no CUDA device answers (CuPy {'installed' if nnlite.backend.cupy else 'not installed'}); "
              "nothing checked (use --device fake to run the checks on the fake device)")
        return 2
    report = args.report or default_report_path()
    header = ["# gpu_check", "", f"* device: {_device_line(args.device)}",
              f"* command: `python benchmarks/gpu_check.py {' '.join(sys.argv[1:] if argv is None else argv)}`",
              f"* started: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"]
    results, started = {}, clock()
    selected = [c for c in CHECKS if not args.only or c.name in args.only]
    for c in selected:
        left = args.budget - (clock() - started)
        if left < min(20.0, c.timeout_s):
            results[c.name] = {"status": "skipped", "seconds": 0.0,
                               "summary": f"not started: {left:.0f} s of the budget left"}
            _write_report(report, header, results)
            continue
        results[c.name] = run_child(c, args, min(c.timeout_s, left))
        _write_report(report, header, results)
        print(f"{c.name}: {results[c.name]['status']} ({results[c.name]['seconds']:.1f} s) "
              f"{results[c.name]['summary']}", flush=True)
    print(f"report: {report}")
    return 0 if all(r["status"] == "pass" for r in results.values()) else 1


def _run_child(c, args, timeout):
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result_path = Path(tmp) / "result.json"
        command = [sys.executable, __file__, "--run-one", c.name, "--device", args.device,
                   "--result", str(result_path)] + (["--quick"] if args.quick else [])
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"status": "TIMEOUT", "seconds": time.monotonic() - start,
                    "summary": f"stopped after {timeout:.0f} s"}
        if result_path.exists():
            result = json.loads(result_path.read_text())
        else:
            tail = (done.stderr or done.stdout)[-2000:]
            result = {"status": "ERROR", "summary": f"the check's process exited with "
                                                    f"{done.returncode} and no result",
                      "details": f"```\n{tail}\n```"}
    result["seconds"] = time.monotonic() - start
    return result


if __name__ == "__main__":
    sys.exit(main())
