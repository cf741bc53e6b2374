"""TLS on the C2S connection: sans-I/O sessions, and real processes."""

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bluetrace.protocol.framing import FrameDecoder
from bluetrace.protocol.messages import LoginReply, LoginRequest, encode
from bluetrace.protocol.wire import LoginStatus
from bluetrace.runtime.tls import TlsError, TlsSession, client_context, server_context
from tests.harness import WAIT, running_server

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _closed(sock: socket.socket) -> bool:
    """Read until the peer closes (an alert may come first); bounded."""
    return any(sock.recv(4096) == b"" for _ in range(10))


def _pump(a: TlsSession, b: TlsSession) -> tuple[bytes, bytes]:
    got_a, got_b = b"", b""
    for _ in range(20):
        to_b, to_a = a.data_to_send(), b.data_to_send()
        if not to_a and not to_b:
            break
        if to_b:
            got_b += b.receive(to_b)
        if to_a:
            got_a += a.receive(to_a)
    return got_a, got_b


def test_frames_travel_unchanged_inside_tls(tls_certificate: tuple[Path, Path, str]) -> None:
    cert, key, pin = tls_certificate
    server = TlsSession(server_context(cert, key), server_side=True)
    client = TlsSession(client_context(None), server_side=False, pin=pin)
    client.start()
    frame = encode(LoginRequest("+61410888888", "comp3331"))
    client.send(frame)  # held until the handshake is done
    _, at_server = _pump(client, server)
    assert at_server == frame
    server.send(encode(LoginReply(LoginStatus.OK)))
    at_client, _ = _pump(client, server)
    assert FrameDecoder().messages(at_client) == [LoginReply(LoginStatus.OK)]


def test_a_garbage_handshake_is_one_clear_error(tls_certificate: tuple[Path, Path, str]) -> None:
    cert, key, _ = tls_certificate
    server = TlsSession(server_context(cert, key), server_side=True)
    with pytest.raises(TlsError, match=r"^the phone does not speak TLS .*--tls-ca or --tls-pin"):
        server.receive(encode(LoginRequest("+61410888888", "comp3331")))


def test_a_wrong_pin_is_refused(tls_certificate: tuple[Path, Path, str]) -> None:
    cert, key, _ = tls_certificate
    server = TlsSession(server_context(cert, key), server_side=True)
    client = TlsSession(client_context(None), server_side=False, pin="0" * 64)
    client.start()
    with pytest.raises(TlsError, match="does not match --tls-pin"):
        _pump(client, server)


def test_a_tls_server_serves_tls_phones_and_shrugs_off_bad_ones(
    tls_certificate: tuple[Path, Path, str], tmp_path: Path
) -> None:
    cert, key, pin = tls_certificate
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--login-timeout", "1")
    with running_server(tmp_path, *args) as server:
        plain = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        plain.sendall(encode(LoginRequest("+61410888888", "comp3331")))
        stalled = socket.create_connection(("127.0.0.1", server.port), timeout=WAIT)
        stalled.sendall(b"\x16\x03\x01")  # a handshake that never finishes
        context = client_context(cert)
        with context.wrap_socket(
            socket.create_connection(("127.0.0.1", server.port), timeout=WAIT),
            server_hostname="127.0.0.1",
        ) as good:
            good.sendall(encode(LoginRequest("+61410888888", "comp3331")))
            assert FrameDecoder().messages(good.recv(100)) == [LoginReply(LoginStatus.OK)]
        assert stalled.recv(100) == b""  # closed by the login deadline (1 s)
        server.stderr.wait_for("does not speak TLS")  # the plain client, refused in one line
        assert _closed(plain)
        plain.close()
        stalled.close()
        phone = subprocess.run(
            [sys.executable, "-m", "bluetrace.phone.main", "127.0.0.1", str(server.port), "8999",
             "--tls-pin", pin],
            input="+61410999999\nbada4568\nlogout\n", capture_output=True, text=True,
            timeout=30, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert phone.returncode == 0, phone.stdout + phone.stderr
        assert "Welcome to the BlueTrace Simulator!" in phone.stdout
