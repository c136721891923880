"""Large directories: DIRECTORY answers E2BIG, the client lists through DIRECTORY_PART."""

from __future__ import annotations

from typing import Any

from xsactor import Client
from xsactor.protocol import Op, Packet

from .faultproxy import FaultProxy

NAMES = [f"child-with-a-long-name-{i:04d}" for i in range(300)]  # ~8.4 KB of names


def fill(client: Client, path: str) -> None:
    tid = client.transaction()
    for name in NAMES:
        client.write(f"{path}/{name}", "", tid)
    client.commit(tid)


def test_directory_larger_than_a_reply(client: Client) -> None:
    fill(client, "/big")
    assert sum(len(n) + 1 for n in NAMES) > 4096
    assert sorted(client.list("/big")) == NAMES
    tid = client.transaction()
    assert sorted(client.list("/big", tid)) == NAMES
    client.rollback(tid)


def test_directory_part_is_used_and_chunks_are_whole(proxy: FaultProxy, clients: Any) -> None:
    client = clients(proxy.socket_path)
    fill(client, "/big")
    before = len(proxy.all_received)
    assert client.list("/big") == NAMES  # in the daemon's order
    ops = [p.op for p in proxy.all_received[before:]]
    assert ops[0] == Op.DIRECTORY
    assert ops[1:] == [Op.DIRECTORY_PART] * (len(ops) - 1) and len(ops) >= 3


def test_directory_part_restarts_when_the_generation_changes(proxy: FaultProxy,
                                                             clients: Any) -> None:
    client = clients(proxy.socket_path)
    other = clients(proxy.daemon.socket_path)  # straight to the daemon
    fill(client, "/big")
    offsets: list[bytes] = []

    def meddle(_link: Any, packet: Packet) -> None:
        if packet.op == Op.DIRECTORY_PART:
            offsets.append(packet.args[1])
            if len(offsets) == 2:  # between the first and second chunk: add a child
                other.write("/big/added-while-listing", "")

    proxy.on_request = meddle
    assert sorted(client.list("/big")) == sorted([*NAMES, "added-while-listing"])
    assert offsets[0] == b"0" and offsets.count(b"0") == 2  # started again from offset 0
