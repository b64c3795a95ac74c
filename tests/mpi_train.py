"""``inpainting train`` as one rank of ``mpirun``, for tests/test_distributed.py (not a test).

    mpirun -n 2 python tests/mpi_train.py [--writes FILE] [--fail-at STEP | --hang-at STEP]
        -- TRAIN ARGS...

``--writes FILE``: every rank but 0 records each file it opens for writing, renames, creates
or removes (Python's audit events) and, after training, rank 1 stores that list in FILE.
``--fail-at STEP`` makes rank 1 raise in its generator update of STEP; ``--hang-at STEP``
makes it sleep there instead (a rank that hangs); ``--interrupt-at STEP`` sends SIGINT (Ctrl-C)
to rank 1 alone there.
"""
import argparse
import json
import signal
import sys
import time

from inpainting.app import cli
from inpainting.training import distributed
from inpainting.training.train import Trainer

_WRITE_EVENTS = ("os.rename", "os.replace", "os.mkdir", "os.remove", "os.unlink", "os.rmdir",
                 "shutil.move", "shutil.rmtree")
recorded, recording = [], [True]


def _audit(event, args):
    if not recording[0]:
        return
    if event == "open":
        path, mode, flags = args
        writing = ((isinstance(flags, int) and flags & 0o3)           # O_WRONLY / O_RDWR
                   or (isinstance(mode, str) and any(c in mode for c in "wax+")))
        if writing and "__pycache__" not in str(path):                # not Python's own caches
            recorded.append(f"open {path}")
    elif event in _WRITE_EVENTS:
        recorded.append(f"{event} {args[0]}")


def _injecting(step, action):
    """A Trainer whose rank 1 fails, hangs or is interrupted in its generator update of
    ``step`` (given to ``cli.main`` as ``trainer_class``: no library code is replaced)."""

    class Injecting(Trainer):
        def generator_step(self, **kwargs):
            if self.comm.rank == 1 and self.step + 1 == step:
                if action == "fail":
                    raise RuntimeError(f"injected failure on rank 1 at step {step}")
                if action == "interrupt":
                    signal.raise_signal(signal.SIGINT)
                else:
                    time.sleep(600)
            return super().generator_step(**kwargs)

    return Injecting


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes")
    parser.add_argument("--fail-at", type=int)
    parser.add_argument("--hang-at", type=int)
    parser.add_argument("--interrupt-at", type=int)
    args, train = parser.parse_known_args()
    train = train[1:] if train[:1] == ["--"] else train
    trainer_class = None
    if args.fail_at:
        trainer_class = _injecting(args.fail_at, "fail")
    if args.hang_at:
        trainer_class = _injecting(args.hang_at, "hang")
    if args.interrupt_at:
        trainer_class = _injecting(args.interrupt_at, "interrupt")
    comm = distributed.communicator("cpu")
    if args.writes and comm.rank > 0:
        sys.addaudithook(_audit)
    code = cli.main(["train", *train], trainer_class=trainer_class)
    recording[0] = False
    if args.writes and comm.rank == 1:
        with open(args.writes, "w") as handle:
            json.dump(recorded, handle)
    return code


if __name__ == "__main__":
    sys.exit(main())
