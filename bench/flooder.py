"""
One chatd member who floods: logs in as NICK, joins ROOM, then writes lines as
fast as the socket takes them, until killed.  Prints "flooding" once joined.

    python bench/flooder.py PORT NICK ROOM

chatd delays such a sender (it stops reading from it); the benchmark measures
whether the other members notice.
"""

import socket
import sys


def main(port, nick, room):
    sock = socket.create_connection(("127.0.0.1", int(port)))
    replies = sock.makefile("rb")
    for line in replies:
        if line.startswith(b"??? "):
            break
    sock.sendall(f"{nick}\n/join {room}\n".encode())
    for line in replies:
        if line.startswith(f"=== {room} members".encode()):
            break
    print("flooding", flush=True)
    line = b"flood " + b"x" * 58 + b"\n"
    batch = line * 1000
    # What chatd sends back is never read: its send queue towards this
    # member is its own affair (and bounded).
    while True:
        sock.sendall(batch)


if __name__ == "__main__":
    main(*sys.argv[1:])
