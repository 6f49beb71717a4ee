"""``paystream up``'s port probe: a restart gets its ports back."""

from __future__ import annotations

import socket

from paystream.commands.up import _port


def test_a_port_left_in_time_wait_is_free_for_the_next_up() -> None:
    """A restart within a minute: the last connections' server side sits in TIME_WAIT."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server closes first: its side of the connection is in TIME_WAIT
    client.close()
    server.close()
    assert _port(port) == port
