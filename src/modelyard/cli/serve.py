"""``modelyard serve``: the platform server (uvicorn running the serving app in N workers)."""

from __future__ import annotations

import contextlib
import errno
import math
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from modelyard.cli.context import platform
from modelyard.cli.loop_keeper import LoopKeeper
from modelyard.errors import CannotListen, InvalidInput, StorageNotWritable


def url_of(scheme: str, host: str, port: int) -> str:
    """``scheme://host:port``, an IPv6 address in brackets as a URL spells it (``::1`` made
    ``http://::1:8080``, which no client reads as a port)."""
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def bind_listener(
    host: str, port: int, option: str = "--port", shared: bool = False
) -> socket.socket:
    """A socket bound to ``host:port`` the way uvicorn binds it, for the server to serve on.

    It is not listening yet: until the app has started (every deployed model loaded and
    warmed) a connection is refused, as when uvicorn binds by itself. uvicorn would bind only
    then, and exit 3 with its own log lines on a port in use; binding first fails in a moment,
    with one line, and port 0 takes a free port the system picks (``getsockname`` names it).

    Args:
        option: The option that names the port, for the message.
        shared: Set ``SO_REUSEPORT``, so that the workers' gRPC servers (which set it too)
            can bind the same port while this socket holds it.

    Raises:
        CannotListen: the address is in use, not one of this machine's, or not allowed.
    """
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a port left in TIME_WAIT by an earlier server is free to use.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            reason = f"address already in use (pass another {option}, or stop what holds it)"
        else:
            text = exc.strerror or str(exc)
            reason = text[:1].lower() + text[1:]
        raise CannotListen(f"cannot listen on {shown}: {reason}") from None
    return sock


def check_listen(host: str, port: int, option: str = "--port") -> None:
    """Bind ``host:port`` as :func:`bind_listener` does, and let go of it at once.

    Raises:
        CannotListen: the address is in use, not one of this machine's, or not allowed.
    """
    bind_listener(host, port, option).close()


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="TCP port (0: a free one, named in the banner).", min=0, max=65535)
    ] = 8080,
    grpc_port: Annotated[
        int | None,
        typer.Option(
            help="Also serve the Open Inference Protocol V2 over gRPC on this port (same host; "
            "0: a free one, named in the banner).",
            min=0,
            max=65535,
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.", min=1, max=64)] = 1,
    max_payload_mb: Annotated[
        float | None, typer.Option(help="Largest request body in MB (default 6).")
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="An origin browsers may call from (repeat; '*' for any)."),
    ] = None,
    poll_interval: Annotated[
        float | None, typer.Option(help="Seconds between checks for endpoint changes.")
    ] = None,
    monitors: Annotated[
        bool,
        typer.Option(
            "--monitors/--no-monitors",
            help="Also run the scheduler (batch schedules, monitor schedules, alarms) in a "
            "process beside the workers.",
        ),
    ] = True,
) -> None:
    """Serve every endpoint in the store over HTTP (and gRPC with --grpc-port) until Ctrl-C.

    Changes made by any other process (CLI, Python API) are picked up within a second or two,
    in every worker.
    """
    from modelyard.config import cors_origin_problem, load_settings

    # An empty host (an unset shell variable, most likely) binds every interface: a server open
    # to the network must be asked for by name, as uvicorn's and gunicorn's users write it.
    if not host.strip():
        raise InvalidInput(
            f"--host must name an interface, got {host!r}: 127.0.0.1 for this machine only, "
            "0.0.0.0 (or ::) for every interface"
        )
    # NaN passed a '<= 0' check and crashed int(); under a byte is no limit a server can keep.
    if max_payload_mb is not None and not 1 <= max_payload_mb * 1024 * 1024 < math.inf:
        raise InvalidInput(
            f"--max-payload-mb must be a finite number, at least a byte (1e-06), "
            f"got {max_payload_mb:g}"
        )
    for origin in cors_origin or ():  # a typo would leave CORS off without a word
        problem = cors_origin_problem(origin.strip())
        if problem is not None:
            raise InvalidInput(f"--cors-origin {origin!r} {problem}")
    if grpc_port is None:  # MODELYARD_GRPC_PORT, checked like the option
        grpc_port = load_settings().grpc_port
    # Worker processes build their own app from the environment: pass the options that way.
    overrides = {
        "MODELYARD_MAX_PAYLOAD_BYTES": (
            str(int(max_payload_mb * 1024 * 1024)) if max_payload_mb is not None else None
        ),
        "MODELYARD_CORS_ORIGINS": ",".join(cors_origin) if cors_origin else None,
        "MODELYARD_PLAN_POLL_S": str(poll_interval) if poll_interval is not None else None,
        "MODELYARD_GRPC_HOST": host if grpc_port is not None else None,
    }
    if grpc_port and grpc_port == port:
        raise InvalidInput(f"--grpc-port must differ from --port, both are {port}")
    os.environ.update({k: v for k, v in overrides.items() if v is not None})
    with contextlib.ExitStack() as held:
        listener = held.enter_context(bind_listener(host, port))
        if grpc_port == 0:
            # Every worker binds the gRPC port itself: left at 0, each would get its own. The
            # port is chosen here, once, and held (not listening, so it takes no connection)
            # until the server stops, so nothing else takes it between worker restarts.
            grpc_port = held.enter_context(_free_grpc_port(host)).getsockname()[1]
        elif grpc_port is not None:
            check_listen(host, grpc_port, option="--grpc-port")
        if grpc_port is not None:
            os.environ["MODELYARD_GRPC_PORT"] = str(grpc_port)
        _serve_on(listener, host, grpc_port, workers, monitors)


def _free_grpc_port(host: str) -> socket.socket:
    """A socket holding a free port on ``host`` that gRPC servers may bind too.

    Raises:
        InvalidInput: this system has no ``SO_REUSEPORT``, which sharing the port needs.
        CannotListen: no port can be bound on ``host``.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise InvalidInput(
            "--grpc-port 0 needs SO_REUSEPORT, which this system lacks (every worker binds "
            "the gRPC port): name a port"
        )
    return bind_listener(host, 0, option="--grpc-port", shared=True)


def _serve_on(
    listener: socket.socket, host: str, grpc_port: int | None, workers: int, monitors: bool
) -> None:
    """Open the store, say where the server answers, and serve on ``listener`` until stopped."""
    port = int(listener.getsockname()[1])  # the one the system picked, for --port 0
    # Each worker records where it answers with its status (unless the URL clients should use
    # was given, e.g. behind NAT); a wildcard bind is reached by this machine's name.
    reach = socket.gethostname() if host in ("0.0.0.0", "::") else host
    os.environ.setdefault("MODELYARD_SERVER_URL", url_of("http", reach, port))
    # Open the store here first: a bad URL or schema is one clear error, not N worker crashes.
    current = platform()
    os.environ["MODELYARD_HOME"] = str(current.settings.home)
    # The workers' metric files live in a fresh folder per run: GET /metrics sums every file
    # in it, so files left by an earlier run must not be there.
    metrics_dir = (
        fresh_metrics_dir(current.settings.metrics_dir) if current.settings.metrics else None
    )
    if metrics_dir is not None:
        os.environ["MODELYARD_METRICS_DIR"] = str(metrics_dir)
    count = len(current.endpoints.list_endpoints())
    grpc = f" and {url_of('grpc', host, grpc_port)}" if grpc_port is not None else ""
    typer.echo(
        f"modelyard serving {count} endpoint(s) from {current.settings.home} on "
        f"{url_of('http', host, port)}{grpc} with {workers} worker(s)",
        err=True,
    )
    current.close()
    # uvicorn (one worker) answers SIGTERM with a graceful shutdown and then raises the signal
    # again once its own handler is gone: at the default action, the process died there and
    # skipped the finally below (the loop left running alone, the metric files left behind).
    # This handler, restored by uvicorn, turns that second SIGTERM into an exception. Once
    # cleaned up, a stop asked for by SIGTERM ends with status 0, as uvicorn's supervisor of
    # several workers ends it, and as Ctrl-C does: the stop was asked for and went well
    # (systemd reads 0 as a clean stop, where an exit status of 143 would mark the unit failed;
    # a container stopped this way shows "Exited (0)", not an error).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    loop = None
    try:
        # The scheduler loop runs in its own process, out of the workers' request path, and
        # is started again should it die.
        loop = LoopKeeper() if monitors else None
        _run_uvicorn(listener, host, workers)
    except _Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # another one must not cut this short
        if loop is not None:
            loop.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_uvicorn(listener: socket.socket, host: str, workers: int) -> None:
    """Run the serving app in uvicorn on ``listener``'s port.

    ``listener`` is held throughout, so no other process can take the port (the one the
    banner names, for ``--port 0``) while the models load: one worker serves on it, and
    uvicorn's supervisor hands it to every worker it starts, as ``uvicorn.run`` hands the
    socket it binds (binding again, after letting go of ``listener``, left a gap).
    """
    import uvicorn

    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": int(listener.getsockname()[1]),
        "workers": workers,
        "loop": "uvloop",
        "http": "httptools",
        "access_log": False,
        "log_level": "info",
        "timeout_graceful_shutdown": 10,
    }
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        listener.set_inheritable(True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: a clean stop, as uvicorn.run
            Multiprocess(uvicorn.Config(_APP, **options), sockets=[listener]).run()
        return
    server = uvicorn.Server(uvicorn.Config(_APP, **options))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: a clean stop, as uvicorn.run has it
        server.run(sockets=[listener])
    if not server.started:
        raise SystemExit(_STARTUP_FAILURE)


#: The app factory uvicorn imports in each worker.
_APP = "modelyard.bootstrap:serving_app"
#: uvicorn.run's exit status when the server could not start.
_STARTUP_FAILURE = 3


class _Terminated(SystemExit):
    """SIGTERM reached ``modelyard serve`` outside uvicorn's own handling."""


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise _Terminated(128 + signum)


def fresh_metrics_dir(parent: Path | None) -> Path:
    """A new, empty folder for one server run's metric files (in ``parent``, else the
    system's temp folder).

    Raises:
        StorageNotWritable: ``parent`` cannot be created or written.
    """
    try:
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="modelyard-metrics-", dir=parent))
    except OSError as exc:
        raise StorageNotWritable(
            f"cannot create a metrics folder in {parent or tempfile.gettempdir()}: "
            f"{exc.strerror or exc}"
        ) from None
