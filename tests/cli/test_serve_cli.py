"""``modelyard serve`` on an address it cannot listen on: one ``error:`` line naming the
address, exit 9, and nothing opened or loaded first (uvicorn alone would load and warm every
deployed model, then log ``[Errno 98]`` and exit 3)."""

from __future__ import annotations

import errno
import socket
from typing import Any

import pytest

from modelyard import errors
from modelyard.cli.serve import check_listen
from tests.cli.conftest import serve_churn


@pytest.fixture
def served(cli: Any, model_files: Any) -> Any:
    """The CLI on a home with one endpoint, so that a server starting up would load a model."""
    return serve_churn(cli, model_files, "churn-api")


def test_port_in_use_fails_before_any_model_is_loaded(served: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = served("serve", "--port", str(port))
    line = result.error_line(errors.CannotListen.exit_code)
    assert line == (
        f"error: cannot listen on 127.0.0.1:{port}: address already in use "
        "(pass another --port, or stop what holds it)"
    )
    # The serving app extracts every model it loads under tmp/serving: nothing was loaded.
    assert not (served.home / "tmp" / "serving").exists()


def test_address_not_on_this_machine_fails_before_opening_the_store(cli: Any) -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this machine.
    result = cli("serve", "--host", "192.0.2.1", "--port", "8080")
    line = result.error_line(errors.CannotListen.exit_code)
    assert line == "error: cannot listen on 192.0.2.1:8080: cannot assign requested address"
    assert not cli.home.exists(), "the address is checked before the store is opened"


def test_a_port_an_earlier_server_just_left_is_free() -> None:
    # A server (SO_REUSEADDR, as uvicorn sets it) that closed with a connection open leaves its
    # port held by that connection for a while; uvicorn binds it all the same, so must the check.
    with socket.socket() as earlier, socket.socket() as client:
        earlier.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        earlier.bind(("127.0.0.1", 0))
        earlier.listen()
        port = earlier.getsockname()[1]
        client.connect(("127.0.0.1", port))
        accepted, _ = earlier.accept()
        accepted.close()
    with socket.socket() as plain, pytest.raises(OSError) as held:
        plain.bind(("127.0.0.1", port))
    assert held.value.errno == errno.EADDRINUSE, "the test must leave the port held"
    check_listen("127.0.0.1", port)


def test_a_payload_limit_that_is_no_size_is_refused_before_opening_the_store(cli: Any) -> None:
    """'--max-payload-mb nan' or 'inf' crashed with a traceback (int() of the number of bytes);
    one under a byte was refused as 'invalid settings: max_payload_bytes', a name the user
    never wrote."""
    for value in ("nan", "inf", "-inf", "1e-9", "0"):
        result = cli("serve", "--port", "8080", "--max-payload-mb", value)
        line = result.error_line(errors.InvalidInput.exit_code)
        assert line.startswith("error: --max-payload-mb must be "), line
        assert not cli.home.exists(), "the option is checked before the store is opened"


def test_an_empty_host_is_refused_not_taken_as_every_interface(cli: Any) -> None:
    """'--host ""' (an unset shell variable, most likely) bound every interface and printed
    'http://:PORT': a server open to the network, by an empty word. Every interface is asked
    for by name (0.0.0.0 or ::). The port is held, so that a server that did start on it
    fails at once rather than run on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for host in ("", " "):
            result = cli("serve", "--host", host, "--port", str(port))
            line = result.error_line(errors.InvalidInput.exit_code)
            assert line.startswith("error: --host must name an interface, got "), line
            assert "0.0.0.0" in line, line
    assert not cli.home.exists(), "the option is checked before the store is opened"


def test_a_cors_origin_no_browser_sends_is_refused_by_its_option(cli: Any) -> None:
    """'--cors-origin https://app.example.com/' (a trailing slash: a browser never sends one)
    started a server whose CORS matched nothing."""
    result = cli("serve", "--port", "8080", "--cors-origin", "https://app.example.com/")
    line = result.error_line(errors.InvalidInput.exit_code)
    assert line.startswith("error: --cors-origin 'https://app.example.com/' "), line
    assert "use 'https://app.example.com'" in line, line
    assert not cli.home.exists(), "the option is checked before the store is opened"


def test_the_address_is_shown_as_a_url_spells_it() -> None:
    # An IPv6 address in brackets: the banner said http://::1:8080, which no client can use.
    from modelyard.cli.serve import url_of

    assert url_of("http", "::1", 8080) == "http://[::1]:8080"
    assert url_of("grpc", "fe80::1", 8081) == "grpc://[fe80::1]:8081"
    assert url_of("http", "127.0.0.1", 8080) == "http://127.0.0.1:8080"
    assert url_of("http", "my-host", 80) == "http://my-host:80"
