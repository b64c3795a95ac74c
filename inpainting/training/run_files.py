"""The files of a training run's folder, kept trustworthy across kills, restarts and resumes.

* **Interrupted writes.** Checkpoints, images and the configuration are written under a
  temporary name and renamed into place (``nnlite.serialization.atomic_write``); a process
  killed midway leaves the temporary file. ``remove_interrupted_writes`` deletes them when
  the next run starts.
* **The log.** ``log.jsonl`` is appended one JSON line at a time, so a kill can leave half a
  last line. ``repair_log`` drops it (with a warning naming the file) and the records past
  the step the run continues from (they are trained, and logged, again); ``read_log`` names
  the file and the line of any record that is not JSON.
* **The recorded configuration.** ``config.toml`` is what ``--resume`` continues with.
  ``record_config`` rewrites it only when the configuration changed, and then keeps the
  change as a comment line (``# changed at step 200: iterations 400 -> 800``), so the file
  never silently becomes another recipe. ``resume_config`` builds the configuration of a
  resumed run: the recorded one, overridden only by what the command names.

Fields that do not change what the weights become (``FREE_FIELDS``: the total, the device,
where and how often things are written) may change on resume; any other field is part of
the recipe, and changing it means the run no longer continues exactly (``recipe_changes``).

``estimate`` is the progress bar's description of a run expected to last over an hour.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from nnlite.serialization import TEMPORARY_NAME, atomic_write

from .config import TrainConfig, dump_toml, load_config

__all__ = ["FREE_FIELDS", "estimate", "remove_interrupted_writes", "read_log", "repair_log",
           "recipe_changes", "config_changes", "record_config", "recorded_config",
           "resume_config"]

#: fields a resumed run may change without changing what its weights become
FREE_FIELDS = ("iterations", "device", "out_dir", "checkpoint_every", "keep_checkpoints",
               "log_every", "sample_every", "init_weights")


def _warn(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ interrupted writes

def remove_interrupted_writes(out_dir):
    """Delete the temporary files of writes a killed run left in ``out_dir`` (and its
    ``checkpoints/``); returns their paths. Only names ``atomic_write`` creates are touched."""
    removed = []
    for folder in (Path(out_dir), Path(out_dir) / "checkpoints"):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and TEMPORARY_NAME.match(path.name):
                removed.append((path, path.stat().st_size))
                path.unlink()
    if removed:
        size = sum(bytes_ for _, bytes_ in removed) / 1e6
        _warn(f"removed {len(removed)} temporary file(s) of interrupted writes from {out_dir} "
              f"({size:.1f} MB): " + ", ".join(path.name for path, _ in removed[:3])
              + (", ..." if len(removed) > 3 else ""))
    return [path for path, _ in removed]


# ------------------------------------------------------------------ log.jsonl

def _parse(path, number, line):
    try:
        record = json.loads(line)
    except ValueError as error:
        raise ValueError(f"{path}, line {number}: not a JSON record ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        raise ValueError(f"{path}, line {number}: a log record is a JSON object with an "
                         f"integer 'step', got {line[:60]!r}")
    return record


def read_log(path):
    """The records of a ``log.jsonl`` ([] if there is none); a bad line is a ValueError that
    names the file and the line."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [_parse(path, number, line) for number, line in enumerate(lines, 1) if line.strip()]


def repair_log(path, step=None):
    """Make ``log.jsonl`` a log of steps 1..``step``: drop a half-written last line (warning
    naming the file) and, when ``step`` is given, the records past it. Returns the records
    kept. A bad line elsewhere is not repaired: ValueError naming the file and the line."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    changed = False
    if lines and lines[-1].strip():
        try:
            _parse(path, len(lines), lines[-1])
            complete = text.endswith("\n")
        except ValueError:
            complete = False
        if not complete:
            _warn(f"{path}: dropped its last line, half written when the run was stopped "
                  f"({lines[-1][:40]!r}...)")
            lines, changed = lines[:-1], True
    records = [_parse(path, number, line) for number, line in enumerate(lines, 1)
               if line.strip()]
    kept = records if step is None else [r for r in records if r["step"] <= step]
    if len(kept) != len(records) or changed:
        with atomic_write(path, "w") as stream:
            stream.write("".join(json.dumps(record) + "\n" for record in kept))
    return kept


# ------------------------------------------------------------------ configuration

def _flat(values):
    """A configuration dict with the loss weights as ``losses.<name>`` keys."""
    flat = {key: value for key, value in values.items() if key != "losses"}
    flat.update({f"losses.{key}": value for key, value in values.get("losses", {}).items()})
    return flat


def config_changes(before, after):
    """``[(field, old, new)]`` for every field (``losses.<name>`` included) that differs
    between two configurations (TrainConfigs or dicts); fields ``before`` lacks are skipped."""
    old = _flat(before.to_dict() if isinstance(before, TrainConfig) else before)
    new = _flat(after.to_dict() if isinstance(after, TrainConfig) else after)
    return [(name, old[name], new.get(name)) for name in old
            if name in new and old[name] != new[name]]


def recipe_changes(before, after):
    """The changes of ``config_changes`` that break exact resumption (not ``FREE_FIELDS``)."""
    return [change for change in config_changes(before, after) if change[0] not in FREE_FIELDS]


def describe(changes):
    """``batch_size 2 -> 16, iterations 4 -> 8``."""
    return ", ".join(f"{name} {old!r} -> {new!r}" for name, old, new in changes)


def record_config(out_dir, config, step):
    """Write ``config`` to ``out_dir/config.toml``, keeping earlier change lines, and append
    ``# changed at step <step>: ...`` when it differs from the recorded one. Returns the
    changes (``[]``: the file is left as it was). The folder itself is not a change: a run
    moved elsewhere keeps its file."""
    path = Path(out_dir) / "config.toml"
    history, changes = [], []
    if path.is_file():
        recorded = load_config(path)
        changes = [c for c in config_changes(recorded, config) if c[0] != "out_dir"]
        if not changes:            # the same recipe (a moved folder included): left as is
            return []
        history = [line for line in path.read_text(encoding="utf-8").splitlines()
                   if line.startswith("# changed at step ")]
        history.append(f"# changed at step {step}: {describe(changes)}")
    with atomic_write(path, "w") as stream:
        stream.write("\n".join(history + [dump_toml(config)]))
    return changes


def recorded_config(out_dir):
    """The configuration a run folder records: its ``config.toml``, or the one stored in its
    newest checkpoint (runs from before the file was kept); ``(config, source)`` or
    ``(None, None)`` when the folder holds neither."""
    from ..weights import checkpoint as ckpt

    path = Path(out_dir) / "config.toml"
    if path.is_file():
        return load_config(path), path
    newest = ckpt.latest(Path(out_dir) / "checkpoints")
    if newest is None:
        return None, None
    state = ckpt.load(newest)
    try:
        values = json.loads(str(state["config"]))
        return TrainConfig.from_dict(values).validate(), newest
    except (KeyError, ValueError, TypeError) as error:
        raise ckpt.CheckpointError(f"{newest} holds no readable configuration ({error}); "
                                   "resume with --config naming the run's recipe") from None


def _named_in_file(path):
    """The fields a TOML file names (loss weights as ``losses.<name>``), type-checked."""
    import tomllib

    checked = _flat(load_config(path).to_dict())
    named = _flat(tomllib.loads(Path(path).read_text()))
    return {key: checked[key] for key in named if key in checked}


def resume_config(out_dir, config_path=None, flags=None, *, force=False):
    """The configuration of ``--resume``: the run's recorded one, overridden only by the
    fields the ``--config`` file and the ``flags`` (a dict, None = not given) name.

    Returns ``(config, source, changes)``; ``(None, None, [])`` when ``out_dir`` records no
    run. A change of a recipe field is a ValueError naming it unless ``force``.
    """
    base, source = recorded_config(out_dir)
    if base is None:
        return None, None, []
    named = _named_in_file(config_path) if config_path is not None else {}
    named.update({key: value for key, value in (flags or {}).items() if value is not None})
    named["out_dir"] = str(out_dir)
    config = base.replace(**named).validate()
    changes = [c for c in config_changes(base, config) if c[0] != "out_dir"]
    refused = [c for c in changes if c[0] not in FREE_FIELDS]
    if refused and not force:
        raise ValueError(
            f"--resume: {source} records {', '.join(f'{n} = {o!r}' for n, o, _ in refused)}; "
            f"this command asks for {', '.join(f'{n} = {v!r}' for n, _, v in refused)}, which "
            "changes the recipe, so the run would not continue exactly: leave "
            f"{'it' if len(refused) == 1 else 'them'} out to continue the run as recorded, "
            "or add --force to change the recipe anyway")
    return config, source, changes


# ------------------------------------------------------------------ how long

#: steps timed (after the first, which allocates and warms caches) for a long run's estimate
ESTIMATE_AFTER = 3


def estimate(steps, seconds, timed=ESTIMATE_AFTER, *, warmup=False, threshold=3600.0):
    """The progress bar's description for a run of ``steps`` whose steps 2 to ``timed + 1``
    took ``seconds``: the estimate when it exceeds ``threshold`` seconds, else ''.
    ``warmup``: the timed steps were warm-up steps and adversarial ones follow (an estimate
    from cheaper steps: at least this long)."""
    per_step = seconds / timed
    total = steps * per_step
    if total <= threshold:
        return ""
    shown = f"{total / 3600:.1f} h" if total < 48 * 3600 else f"{total / 86400:.1f} days"
    return (f"estimate {'>= ' if warmup else ''}{shown}: {steps:,} steps x {per_step:.2f} "
            f"s/step (timed on steps 2-{timed + 1}{', warm-up' if warmup else ''})")
