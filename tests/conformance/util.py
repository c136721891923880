"""Assertions and small builders shared by the conformance cases."""

from __future__ import annotations

from xsactor.daemon.toolstack import GuestSpec
from xsactor.protocol import Op, Packet
from xsactor.protocol.errors import ERROR_NAMES
from xsactor.protocol.packets import split_args
from xsactor.testing.wire import WireClient

OK = b"OK\0"


def error_name(reply: Packet) -> str | None:
    """The error a reply carries (None for a success reply)."""
    if reply.op != Op.ERROR:
        return None
    return reply.payload.rstrip(b"\0").decode("ascii", "replace")


def assert_ok(reply: Packet, op: int | None = None) -> None:
    """A success reply carrying ``OK\\0``."""
    assert reply.op != Op.ERROR, f"expected OK, got {reply!r}"
    if op is not None:
        assert reply.op == op, reply
    assert reply.payload == OK, reply


def assert_success(reply: Packet) -> bytes:
    assert reply.op != Op.ERROR, f"expected success, got {reply!r}"
    return reply.payload


def assert_error(reply: Packet, name: str) -> None:
    """An ERROR reply whose payload is exactly ``name\\0``."""
    assert reply.op == Op.ERROR, f"expected {name}, got {reply!r}"
    assert reply.payload == name.encode() + b"\0", f"expected {name}, got {reply!r}"


def assert_some_error(reply: Packet) -> None:
    """An ERROR reply with one of 4.17's error names (where 4.17 answers a stale errno)."""
    assert reply.op == Op.ERROR, f"expected an error, got {reply!r}"
    assert reply.payload.endswith(b"\0"), reply
    assert error_name(reply) in ERROR_NAMES, reply


def fail_normally(conn: WireClient) -> None:
    """A request that fails in the ordinary way (ENOENT), so that 4.17's leftover errno is
    not 0 before a malformed request (see the assertion crash in the reference notes)."""
    assert_some_error(conn.request(Op.READ, "/no-such-node-here"))


def vm_path(domid: int) -> str:
    """The ``/vm/<uuid>`` directory xl makes for a guest (its ``vm`` node's value)."""
    return f"/vm/{GuestSpec(domid).uuid}"


def wr(conn: WireClient, path: str, value: bytes | str = b"", tx_id: int = 0) -> Packet:
    """A WRITE exchange (the reply, unchecked)."""
    return conn.exchange(Packet.write(path, value, req_id=conn.next_req_id(), tx_id=tx_id))


def no_events(conn: WireClient) -> None:
    """Nothing was queued for ``conn`` (checked with a round trip)."""
    events = conn.drain_events()
    assert events == [], f"unexpected events {events!r}"


def watch(conn: WireClient, path: str, token: str | bytes) -> None:
    """WATCH and swallow the initial event (checking it)."""
    conn.watch(path, token)
    got = conn.next_event()
    expected = (path.encode(), token if isinstance(token, bytes) else token.encode())
    assert got == expected, f"initial event {got!r}, expected {expected!r}"


def pipeline(conn: WireClient, packets: list[Packet], batch: int = 64) -> list[Packet]:
    """Send packets in batches without waiting; return their replies in order."""
    replies: list[Packet] = []
    for start in range(0, len(packets), batch):
        chunk = packets[start:start + batch]
        conn.send(*chunk)
        replies.extend(conn.reply_to(p.req_id) for p in chunk)
    return replies


def writes(conn: WireClient, items: list[tuple[str, bytes]], tx_id: int = 0) -> list[Packet]:
    """Pipelined WRITEs; their replies in order."""
    return pipeline(conn, [Packet.write(path, value, req_id=conn.next_req_id(), tx_id=tx_id)
                           for path, value in items])


def quota_field(text: str, name: str) -> list[str]:
    """The words after ``name:`` on its line of a CONTROL quota listing."""
    for line in text.splitlines():
        field, colon, rest = line.partition(":")
        if colon and field.strip() == name:
            return rest.split()
    raise AssertionError(f"no {name!r} line in {text!r}")


def path_of_length(prefix: str, total: int, component: int = 100) -> str:
    """``prefix`` extended with ``/xxx...`` components to exactly ``total`` characters."""
    path = prefix
    while len(path) < total:
        room = total - len(path) - 1  # minus the slash
        if room <= 0:
            # one character left: lengthen the previous component instead
            path = path[:-1] + "yy"
            continue
        path += "/" + "x" * min(component, room)
    assert len(path) == total, (len(path), total)
    return path


Node = tuple[str, bytes, tuple[str, ...]]


def generation(conn: WireClient, path: str) -> int:
    """A node's generation number (the first field of a DIRECTORY_PART reply)."""
    return int(split_args(conn.call(Op.DIRECTORY_PART, path, 0))[0])


def dump_tree(conn: WireClient, root: str = "/") -> list[Node]:
    """Every node under ``root`` (pre-order, children in the daemon's order): its path, value
    and ACL."""
    nodes: list[Node] = []
    pending = [root]
    while pending:
        path = pending.pop()
        nodes.append((path, conn.read(path), tuple(conn.get_perms(path))))
        base = path.rstrip("/")
        pending += [f"{base}/{name.decode()}" for name in reversed(conn.directory(path))]
    return nodes
