"""What an HTTPS server answers a client that verifies it as the cloud's clients do: against the
cloud's CA, for the name the client asked for; and what it answers a client without TLS."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

# A TLS client run where a server's names resolve (a sandbox's network, a pod, with the Python
# there): the serial of the certificate the server serves, verified with the CA for the name asked,
# presenting a certificate of its own when given one.
# Arguments: address port server_name ca [certificate key]
SERVED_SERIAL = """
import socket, ssl, sys
address, port, server_name, ca, *pki = sys.argv[1:]
context = ssl.create_default_context(cafile=ca)
if pki:
    context.load_cert_chain(*pki)
with socket.create_connection((address, int(port)), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname=server_name) as tls:
        print(tls.getpeercert()["serialNumber"])
"""


def verified_get(address: str, port: int, name: str, ca: Path, path: str = "/") -> str:
    """`<TLS version> <status line>` of GET `path` from `address:port`, the server's certificate
    verified against `ca` for `name` (the Service's name a client in the cloud uses), or why the
    handshake failed: `refused: <reason>`."""
    context = ssl.create_default_context(cafile=str(ca))
    request = f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode()
    try:
        with (
            socket.create_connection((address, port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            tls.sendall(request)
            answer = tls.recv(4096).decode(errors="replace")
            return f"{tls.version()} {answer.splitlines()[0] if answer else '(nothing)'}"
    except (ssl.SSLError, ssl.CertificateError, OSError) as error:
        return f"refused: {error}"


def plaintext_get(address: str, port: int, path: str = "/") -> str:
    """What `address:port` answers a plaintext HTTP GET: its status line, that it closed, or the error."""
    try:
        with socket.create_connection((address, port), timeout=10) as raw:
            raw.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            raw.settimeout(10)
            answer = raw.recv(4096).decode(errors="replace")
            return f"answered {answer.splitlines()[0]!r}" if answer.startswith("HTTP/") else "no HTTP answer"
    except OSError as error:
        return f"refused: {error}"
