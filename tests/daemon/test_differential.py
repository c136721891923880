"""Differential runs: the same random request sequences against the embedded daemon and the C
reference xenstored 4.17; every reply and every event must be identical (generation numbers
included). Skipped when the reference cannot be installed (see xsactor.testing.daemons)."""

from __future__ import annotations

import random

import pytest

from xsactor.protocol import Op, Packet
from xsactor.protocol.packets import join_args
from xsactor.testing.daemons import require_reference, running

pytestmark = pytest.mark.reference

PATHS = ["/d", "/d/a", "/d/a/b", "/d/b", "/d/c/d/e", "rel", "rel/x", "/local/domain/5/data",
         "/local/domain/5/data/x", "/local/domain/5/data/x/y", "data/z", "data/z/q",
         "/local/domain/5", "/local/domain/5/name", "/local/domain/5/new", "/local/domain/0/q",
         "/tool", "/", "/local/domain/5/control/shutdown", "/d/a.b"]
PERMS = ["n0", "r5", "b5", "n5", "w5", "r0", "b0", "r6"]

Step = tuple[int, object, bytes, int]

# Domain operations go through a dom0 connection that never watches: 4.17 queues the events of
# a RELEASE before or after its reply depending on its connection list when the sender holds
# watches (reference-daemon-notes.md), which is no behaviour to compare.
TOOLSTACK = 2


def plan(seed: int, length: int) -> list[Step]:
    rnd = random.Random(seed)
    steps: list[Step] = []
    for _ in range(length):
        who = rnd.choice([0, 1, 5, 5, 6])
        path = rnd.choice(PATHS)
        tx = rnd.choice([0, 0, 0, 1, 2])
        kind = rnd.choice(["w", "w", "r", "mk", "rm", "ls", "lsp", "gp", "sp", "wa", "uw",
                           "ts", "te", "te", "rr", "intro", "rel", "hv"])
        if kind == "w":
            value = rnd.choice([b"", b"v", b"x" * rnd.choice([10, 1990, 2020])])
            steps.append((who, Op.WRITE, path.encode() + b"\0" + value, tx))
        elif kind in ("r", "mk", "rm", "ls", "gp"):
            op = {"r": Op.READ, "mk": Op.MKDIR, "rm": Op.RM, "ls": Op.DIRECTORY,
                  "gp": Op.GET_PERMS}[kind]
            steps.append((who, op, join_args(path), tx))
        elif kind == "lsp":
            steps.append((who, Op.DIRECTORY_PART, join_args(path, rnd.choice([0, 1, 3])), tx))
        elif kind == "sp":
            perms = [rnd.choice(PERMS) for _ in range(rnd.randint(1, 3))]
            steps.append((who, Op.SET_PERMS, join_args(path, *perms), tx))
        elif kind in ("wa", "uw"):
            op = Op.WATCH if kind == "wa" else Op.UNWATCH
            steps.append((who, op, join_args(path, rnd.choice(["t", "u"])), 0))
        elif kind == "ts":
            steps.append((who, Op.TRANSACTION_START, b"\0", 0))
        elif kind == "te":
            steps.append((who, Op.TRANSACTION_END, rnd.choice([b"T\0", b"T\0", b"F\0"]), tx))
        elif kind == "rr":
            steps.append((who, Op.RESET_WATCHES, b"", 0))
        elif kind == "intro":
            steps.append((TOOLSTACK, Op.INTRODUCE, join_args(6, 0, 1), 0))
        elif kind == "rel":
            steps.append((TOOLSTACK, Op.RELEASE, join_args(6), 0))
        else:
            state = rnd.choice([b"shutdown", b"crashed", b"running"])
            steps.append((TOOLSTACK, "hypervisor", state, 0))
    return steps


def run(kind: str, steps: list[Step]) -> list[tuple]:
    trace: list[tuple] = []
    with running(kind) as daemon:
        daemon.add_guest(5)
        daemon.add_guest(6)
        conns = {0: daemon.dom0(), 1: daemon.dom0(), TOOLSTACK: daemon.dom0(),
                 5: daemon.guest(5), 6: daemon.guest(6)}
        for who, op, payload, tx in steps:
            if op == "hypervisor":
                daemon.set_domain_state(6, payload.decode())
                reply: tuple = ("hypervisor", payload)
            elif who not in conns:
                continue
            else:
                packet = conns[who].exchange(Packet(op, 1, tx, payload))  # type: ignore[arg-type]
                reply = (who, op, payload, tx, packet.op, packet.payload)
            for key, conn in list(conns.items()):
                try:
                    conn.sync()
                except (OSError, ConnectionError):
                    del conns[key]
                    trace.append(("closed", key))
            events = {key: list(conn.events) for key, conn in conns.items()}
            for conn in conns.values():
                conn.events.clear()
            trace.append((*reply, events))
    return trace


@pytest.mark.parametrize("seed", range(4))
def test_same_replies_and_events_as_reference(seed: int) -> None:
    require_reference()
    steps = plan(seed, 120)
    reference = run("reference", steps)
    embedded = run("embedded", steps)
    for index, (want, got) in enumerate(zip(reference, embedded, strict=True)):
        assert got == want, f"step {index}: {steps[index]!r}"
