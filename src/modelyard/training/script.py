"""SageMaker script mode: run a user's training script unchanged, in SageMaker's environment.

The script runs as ``python script.py --name value …`` in a copy of its folder, with the
variables and files SageMaker's training toolkit (``sagemaker-training``) gives it:
``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``, ``SM_HPS``, ``SM_TRAINING_ENV`` …, and
``input/config/{hyperparameters,inputdataconfig,resourceconfig}.json``. The layout under
``work_dir`` mirrors ``/opt/ml``::

    work_dir/code/                  the script's folder, copied (SM_MODULE_DIR, the cwd)
    work_dir/input/config/*.json    SM_INPUT_CONFIG_DIR
    work_dir/input/data/<channel>/  SM_CHANNEL_<CHANNEL>
    work_dir/model/                 SM_MODEL_DIR: what the script saves is the model
    work_dir/output/data/           SM_OUTPUT_DATA_DIR (SM_OUTPUT_DIR is its parent)

Values follow the toolkit: hyperparameters are decoded as JSON where they parse (``"6"`` →
``6``, ``"true"`` → ``True``) in ``SM_HPS``/``SM_TRAINING_ENV``, passed as sorted
``--name value`` arguments (``-n value`` for one-letter names), and kept as the given strings
in ``hyperparameters.json``; ``sagemaker_*`` hyperparameters go to the framework parameters,
not to the script. Not reproduced: installing ``requirements.txt`` (the script runs in the
given interpreter's environment), GPUs (``SM_NUM_GPUS`` is 0) and multi-host training.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from modelyard.config import ENV_PREFIX
from modelyard.errors import InvalidInput, ScriptFailed
from modelyard.training.joblog import JobLog
from modelyard.training.metric_definitions import MetricDefinition, MetricScanner

__all__ = ["JobStopped", "ScriptFailed", "ScriptResult", "run_script"]

HOST = "algo-1"
GROUP = "homogeneousCluster"
TAIL_LINES = 50
KILL_GRACE_S = 10.0  # SIGTERM first; SIGKILL if the script has not ended after this long
DRAIN_S = 5.0  # after the script exits, how long its output may stay open (escaped children)
# Output is read in pieces of at most this much, so a line without end never fills the memory;
# a longer line is logged whole, but only its start is scanned for metrics.
MAX_LINE_BYTES = 64 * 1024
_QUEUED = 64  # pieces read ahead of the log: the script waits rather than the memory growing
# SageMaker's channel-name rule (CreateTrainingJob's ChannelName).
_CHANNEL_NAME = re.compile(r"[A-Za-z0-9.\-_]{1,64}")
# Copying the script's folder is meant for a script and its helpers, not a data lake.
MAX_CODE_BYTES = 100 * 1024 * 1024
_IGNORED = {"__pycache__", ".git", ".hg", ".svn", ".venv", ".mypy_cache", ".pytest_cache"}


class JobStopped(Exception):
    """The run was stopped on request (the ``stop`` event); not an error of the script."""


@dataclass(frozen=True)
class ScriptResult:
    """A finished run: where the model is, and what the log said."""

    model_dir: Path
    output_dir: Path
    metrics: dict[str, float]
    metric_history: dict[str, list[float]]
    exit_code: int
    log_tail: str


def run_script(
    script: Path,
    *,
    channels: Mapping[str, Path],
    hyperparameters: Mapping[str, object],
    work_dir: Path,
    log_file: Path | JobLog,
    metric_definitions: Sequence[MetricDefinition],
    on_line: Callable[[str], None] | None = None,
    timeout_s: float | None = None,
    stop: threading.Event | None = None,
    python: str = sys.executable,
    env: Mapping[str, str] | None = None,
    job_name: str | None = None,
) -> ScriptResult:
    """Run a SageMaker script-mode training script and wait for it.

    Args:
        script: The entry point; its whole folder is copied so that helpers next to it import.
        channels: Channel name → a folder (or one file, given a folder of its own).
        hyperparameters: Name → value, as strings (SageMaker's); other values are JSON-encoded.
        work_dir: Owned by this run: its ``code``, ``input``, ``model`` and ``output``
            folders are replaced.
        log_file: The script's stdout and stderr, merged, are appended here line by line
            (a path gets a :class:`JobLog` of default limits, which bound its size).
        metric_definitions: Regexes read from every line, besides XGBoost/LightGBM eval lines.
        on_line: Called with each output line (without its newline; the first
            ``MAX_LINE_BYTES`` of a longer one), in this thread.
        timeout_s: Wall-clock limit; past it the script is killed and ScriptFailed raised.
        stop: When set, the script's whole process group is terminated and JobStopped raised.
        python: The interpreter that runs the script.
        env: Extra environment variables (SageMaker's ``environment=``), over the inherited
            environment and under the ``SM_*`` variables. Inherited ``SM_*`` are dropped, and
            so are modelyard's own ``MODELYARD_*`` settings (the database URL and its
            password among them): the script is the user's code, not the platform's.
        job_name: The training job's name, as SageMaker gives it (``TRAINING_JOB_NAME``,
            and ``job_name`` in ``SM_TRAINING_ENV``).

    Returns:
        The model and output folders, the metrics (last value of each) and their history.

    Raises:
        InvalidInput: the script or a channel does not exist, a bad channel name, or a script
            folder too large to copy.
        ScriptFailed: non-zero exit, timeout, or an empty ``SM_MODEL_DIR`` after exit 0.
        JobStopped: ``stop`` was set.
    """
    script = Path(script)
    if not script.is_file():
        raise InvalidInput(f"training script not found: {script}")
    if stop is not None and stop.is_set():
        raise JobStopped("the training script was stopped before it started")
    layout = _Layout(Path(work_dir).absolute())
    log_path = log_file.path if isinstance(log_file, JobLog) else Path(log_file)
    layout.prepare(script, log_path)
    channel_dirs = layout.link_channels(channels)
    hps = {k: _decode(v) for k, v in hyperparameters.items()}
    user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    args = _cmd_args(user_hps)
    layout.write_config(hyperparameters, channel_dirs)
    child_env = _environment(layout, script.name, hps, user_hps, args, channel_dirs, env, job_name)

    scanner = MetricScanner(metric_definitions)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with contextlib.ExitStack() as closing:
        log = log_file if isinstance(log_file, JobLog) else closing.enter_context(JobLog(log_path))
        long_line: list[str] = []  # the start of a line longer than one piece

        def consume(piece: str) -> None:
            if not piece.endswith("\n"):  # part of a long line (or an unended last line)
                log.write(piece)
                if not long_line:
                    long_line.append(piece)
                return
            line = piece.rstrip("\r\n")
            log.write(line + "\n")
            if long_line:
                line = long_line.pop()
            tail.append(line)
            scanner.feed(line)
            if on_line is not None:
                on_line(line)

        exit_code = _run(
            [python, script.name, *args], layout.code, child_env, consume, timeout_s, stop, tail
        )
        if long_line:  # the last line had no newline
            consume("\n")
    log_tail = "\n".join(tail)
    if exit_code != 0:
        how = f"training script exited with code {exit_code}"
        if exit_code < 0:  # killed by a signal from outside: the OOM killer, an operator …
            with contextlib.suppress(ValueError):
                how += f" (killed by {signal.Signals(-exit_code).name})"
        raise ScriptFailed(f"{how}\n{log_tail}", log_tail)
    if not any(layout.model.iterdir()):
        raise ScriptFailed("the script wrote no model to SM_MODEL_DIR", log_tail)
    return ScriptResult(
        model_dir=layout.model,
        output_dir=layout.output,
        metrics=scanner.final(),
        metric_history={k: list(v) for k, v in scanner.history.items()},
        exit_code=exit_code,
        log_tail=log_tail,
    )


def _run(
    cmd: list[str],
    cwd: Path,
    env: dict[str, str],
    consume: Callable[[str], None],
    timeout_s: float | None,
    stop: threading.Event | None,
    tail: deque[str],
) -> int:
    """Run ``cmd`` in a new session, feeding each output line to ``consume``; its exit code."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    lines: queue.Queue[str | None] = queue.Queue(maxsize=_QUEUED)
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopping it stops its children
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:  # the interpreter is missing or not executable
        raise InvalidInput(f"cannot start the training script with {cmd[0]}: {exc}") from exc
    assert proc.stdout is not None
    reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    ended_at: float | None = None
    try:
        while True:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                line = ""
            if line is None:
                break  # EOF: the script and every child holding its output are gone
            if line:
                consume(line)
            if stop is not None and stop.is_set():
                _terminate(proc)
                raise JobStopped("the training script was stopped")
            if deadline is not None and time.monotonic() > deadline:
                _terminate(proc)
                text = "\n".join(tail)
                raise ScriptFailed(
                    f"training script ran past its time limit of {timeout_s:g} s and was "
                    f"stopped\n{text}",
                    text,
                )
            if not line and proc.poll() is not None:
                if ended_at is None:
                    # Children left behind would die with SageMaker's container; here too.
                    ended_at = time.monotonic()
                    _kill_group(proc, signal.SIGKILL)
                elif time.monotonic() - ended_at > DRAIN_S:
                    break  # a process that left the group still holds the output open
    finally:
        if proc.poll() is None:
            _terminate(proc)
        give_up = time.monotonic() + 1
        while reader.is_alive() and time.monotonic() < give_up:
            with contextlib.suppress(queue.Empty):  # a full queue would hold the reader
                lines.get(timeout=0.05)
        if not reader.is_alive():  # closing under a blocked reader would block here too
            proc.stdout.close()
    return proc.wait()


def _pump(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    """Queue the output in pieces: a line with its newline, or ``MAX_LINE_BYTES`` of one."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        while raw := stream.readline(MAX_LINE_BYTES):
            if text := decoder.decode(raw):
                lines.put(text)
        if text := decoder.decode(b"", final=True):
            lines.put(text)
    finally:
        lines.put(None)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL it if the job worker dies, so a killed
    worker never leaves a training script running with nobody to record its end."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(proc.pid, sig)  # the session leader's pid is the group id


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the script's process group; SIGKILL it after :data:`KILL_GRACE_S`."""
    _kill_group(proc, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE_S)
    _kill_group(proc, signal.SIGKILL)  # also ends children that outlived the leader
    proc.wait()


class _Layout:
    """The ``/opt/ml``-style folders of one run under ``work_dir``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.code = root / "code"
        self.input = root / "input"
        self.config = self.input / "config"
        self.data = self.input / "data"
        self.model = root / "model"
        self.output = root / "output"
        self.output_data = self.output / "data"
        self.intermediate = self.output / "intermediate"

    def prepare(self, script: Path, log_file: Path) -> None:
        source = script.absolute().parent
        keep = {self.root, log_file.absolute()}
        _check_code_size(source, keep)
        for folder in (self.code, self.input, self.model, self.output):
            if folder.is_symlink() or folder.is_file():
                folder.unlink()
            elif folder.exists():
                shutil.rmtree(folder)

        def ignore(folder: str, names: list[str]) -> set[str]:
            base = Path(folder)
            return {n for n in names if n in _IGNORED or n.endswith(".pyc") or base / n in keep}

        copy_code(source, self.code, ignore)
        for folder in (self.config, self.data, self.model, self.output_data, self.intermediate):
            folder.mkdir(parents=True, exist_ok=True)

    def link_channels(self, channels: Mapping[str, Path]) -> dict[str, Path]:
        """Each channel as the folder ``input/data/<name>`` (a link to it, or holding a link
        to the single file given)."""
        dirs: dict[str, Path] = {}
        for name, given in channels.items():
            if not _CHANNEL_NAME.fullmatch(name):
                raise InvalidInput(
                    f"invalid channel name {name!r}: use 1-64 letters, digits, '.', '-' or '_'"
                )
            path = Path(given).absolute()
            if not path.exists():
                raise InvalidInput(f"channel {name!r}: no such file or folder: {path}")
            target = self.data / name
            if path.is_dir():
                _link_or_copy(path, target)
            else:  # SageMaker channels are folders: one file gets a folder of its own
                target.mkdir()
                _link_or_copy(path, target / path.name)
            dirs[name] = target
        return dirs

    def write_config(self, hyperparameters: Mapping[str, object], dirs: Mapping[str, Path]) -> None:
        # SageMaker writes the request's values: strings, decoded later by the toolkit.
        raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in hyperparameters.items()}
        _write_json(self.config / "hyperparameters.json", raw)
        _write_json(self.config / "inputdataconfig.json", _input_data_config(dirs))
        _write_json(self.config / "resourceconfig.json", _resource_config())


def copy_code(source: Path, target: Path, ignore: Callable[[str, list[str]], set[str]]) -> None:
    """Copy the script's folder (SageMaker's ``source_dir``) to ``target``, links as links.

    A file or folder that vanishes while the folder is copied is left out: it was another
    process's temporary file (an editor's, or a modelyard home kept beside the script, whose
    jobs stage and delete files as they run), and SageMaker would not have seen it either had
    it packed the folder a moment later. Anything else that cannot be copied (a named pipe, an
    unreadable file) fails the job, naming the file and why.

    Raises:
        InvalidInput: a file that exists could not be copied.
    """
    try:
        shutil.copytree(source, target, ignore=ignore, symlinks=True)
    except shutil.Error as exc:
        entries = exc.args[0] if exc.args and isinstance(exc.args[0], list) else None
        if entries is None:
            raise InvalidInput(
                f"cannot copy the training script's folder {source}: {exc}"
            ) from None
        # Each failure is (source, target, why); a source that is gone now had vanished.
        failed = [entry for entry in entries if os.path.lexists(entry[0])]
        if failed:
            path, _, why = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise InvalidInput(
                f"cannot copy the training script's folder {source}: {path}: {why}{more}"
            ) from None


def _check_code_size(source: Path, keep: set[Path]) -> None:
    total = 0
    for folder, subdirs, files in os.walk(source):
        base = Path(folder)
        subdirs[:] = [d for d in subdirs if d not in _IGNORED and base / d not in keep]
        for name in files:
            try:
                total += (base / name).lstat().st_size
            except OSError:
                continue
        if total > MAX_CODE_BYTES:
            raise InvalidInput(
                f"the training script's folder {source} holds more than "
                f"{MAX_CODE_BYTES // 2**20} MiB; put the script and its helper modules in a "
                "folder of their own (SageMaker's source_dir) and pass data as channels"
            )


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        target.symlink_to(source, target_is_directory=source.is_dir())
    except OSError:  # no symlinks here (some Windows setups): copy instead
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)


def _decode(value: object) -> object:
    """A hyperparameter as the toolkit reads it: JSON-decoded where it parses."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _cmd_args(hps: Mapping[str, object]) -> list[str]:
    """The toolkit's ``to_cmd_args``: sorted ``--name value`` pairs, ``-n`` for one letter."""
    args: list[str] = []
    for name in sorted(hps):
        value = hps[name]
        args.append(f"--{name}" if len(name) > 1 else f"-{name}")
        if isinstance(value, Mapping):
            args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
        else:
            args.append("" if value is None else str(value))
    return args


def _env_value(value: object) -> str:
    """The toolkit's ``to_env_vars`` rendering: strings as they are, the rest as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _input_data_config(dirs: Mapping[str, Path]) -> dict[str, dict[str, str]]:
    return {
        name: {
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        }
        for name in dirs
    }


def _instance_group() -> dict[str, Any]:
    return {"instance_group_name": GROUP, "instance_type": "local", "hosts": [HOST]}


def _resource_config() -> dict[str, Any]:
    return {
        "current_host": HOST,
        "current_instance_type": "local",
        "current_group_name": GROUP,
        "hosts": [HOST],
        "instance_groups": [_instance_group()],
        "network_interface_name": "eth0",
    }


def _environment(
    layout: _Layout,
    entry_point: str,
    hps: Mapping[str, object],
    user_hps: Mapping[str, object],
    args: list[str],
    channel_dirs: Mapping[str, Path],
    extra: Mapping[str, str] | None,
    job_name: str | None,
) -> dict[str, str]:
    """The child's environment: inherited (minus stale ``SM_*`` and modelyard's own
    ``MODELYARD_*`` settings), ``extra``, then SageMaker's."""
    cpus = os.cpu_count() or 1
    framework_params = {k: v for k, v in hps.items() if k.startswith("sagemaker_")}
    module_name = entry_point.removesuffix(".py")
    # Keys both SM_TRAINING_ENV and the SM_* variables carry, under the same name.
    common: dict[str, Any] = {
        "current_host": HOST,
        "current_instance_group": GROUP,
        "current_instance_group_hosts": [HOST],
        "current_instance_type": "local",
        "distribution_instance_groups": [],  # no distributed training
        "framework_module": None,
        "hosts": [HOST],
        "instance_groups": [GROUP],
        "instance_groups_dict": {GROUP: _instance_group()},
        "is_hetero": False,
        "input_config_dir": str(layout.config),
        "input_data_config": _input_data_config(channel_dirs),
        "input_dir": str(layout.input),
        "log_level": 20,
        "model_dir": str(layout.model),
        "module_dir": str(layout.code),
        "module_name": module_name,
        "network_interface_name": "eth0",
        "num_cpus": cpus,
        "num_gpus": 0,
        "num_neurons": 0,
        "output_data_dir": str(layout.output_data),
        "output_dir": str(layout.output),
        "output_intermediate_dir": str(layout.intermediate),
        "resource_config": _resource_config(),
        "user_entry_point": entry_point,
    }
    training_env = {
        **common,
        "additional_framework_parameters": framework_params,
        "channel_input_dirs": {name: str(path) for name, path in sorted(channel_dirs.items())},
        "distribution_hosts": [],
        "hyperparameters": dict(user_hps),
        "is_master": True,
        "is_modelparallel_enabled": False,
        "is_smddpmprun_installed": False,
        "is_smddprun_installed": False,
        "job_name": job_name,
        "master_hostname": HOST,
        "topology": [],
    }
    sm: dict[str, object] = {
        **common,
        "channels": sorted(channel_dirs),
        "framework_params": framework_params,
        "hps": dict(user_hps),
        "training_env": training_env,
        "user_args": args,
    }
    sm.update({f"channel_{name}": str(path) for name, path in channel_dirs.items()})
    sm.update({f"hp_{name}": value for name, value in user_hps.items()})

    # The platform's own settings are not the script's: MODELYARD_DB_URL may hold the
    # metadata database's password, the artifact and capture URLs their credentials.
    child = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", ENV_PREFIX))}
    child.update(extra or {})
    child.update({f"SM_{key.upper()}": _env_value(value) for key, value in sm.items()})
    child["SAGEMAKER_BASE_DIR"] = str(layout.root)  # where the toolkit finds input/config
    child["CURRENT_HOST"] = HOST
    if job_name is not None:
        child["TRAINING_JOB_NAME"] = job_name  # where the toolkit reads the job's name
    child["PYTHONUNBUFFERED"] = "1"  # lines reach the log (and the metrics) as printed
    return child


def _write_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True), encoding="utf-8")
