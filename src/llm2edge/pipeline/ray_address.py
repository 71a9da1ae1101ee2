"""Whether a Ray address answers at all, checked in seconds before `ray.init` (which, where nothing
answers, retries for minutes and prints warnings naming the node's own IP instead of the address given).

Ray's head (its GCS) and Ray Client both serve gRPC, which is HTTP/2: a server there answers HTTP/2's
connection preface with a SETTINGS frame. Nothing listening, no route, no answer, or an answer that is not
HTTP/2 (another service on that port) is one EngineError line naming the address. With RAY_USE_TLS set the
first bytes are a TLS handshake, so only the TCP connection is checked. Needs no Ray (sockets only).
"""

from __future__ import annotations

import os
import socket
import time

from llm2edge.defaults import RAY_CONNECT_TIMEOUT_S
from llm2edge.errors import EngineError

#: HTTP/2's client connection preface followed by an empty SETTINGS frame.
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
#: The frame type byte of a SETTINGS frame (the 4th byte of a frame header).
H2_SETTINGS = 0x04


def host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of `HOST:PORT` or `ray://HOST:PORT`; None for `local`, `auto` and other words."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def probe_address(address: str, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """EngineError (one line naming `address`) unless a gRPC server answers there within about `timeout`
    seconds; nothing to check for `local` or `auto`."""
    where = host_port(address)
    if where is None:
        return
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection(where, timeout=timeout) as sock:
            if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
                return
            sock.sendall(H2_PREFACE)
            head = b""
            while len(head) < 9:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                chunk = sock.recv(9 - len(head))
                if not chunk:
                    break
                head += chunk
    except TimeoutError:
        raise EngineError(f"cannot connect to Ray at '{address}': no answer within {timeout:g} s") from None
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise EngineError(f"cannot connect to Ray at '{address}': {reason}") from None
    if len(head) < 9 or head[3] != H2_SETTINGS:
        raise EngineError(f"cannot connect to Ray at '{address}': something answers there, but not Ray "
                          "(no gRPC server on that port)")
