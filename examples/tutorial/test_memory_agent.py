"""The tutorial's agent, tested with xsactor's pytest plugin (the ``xs`` fixture)."""

from memory_agent import follow_memory, tree

from xsactor.testing.sandbox import Sandbox


def test_acknowledges_the_memory_target(xs: Sandbox) -> None:
    guest = xs.guest(5)                         # domain 5, built as xl builds it
    xs.start(follow_memory, guest)              # stopped after the test, checked for leaks
    dom0 = xs.dom0()
    dom0.write("/local/domain/5/memory/target", "524288")
    acked = dom0.wait_for(lambda: dom0.read("/local/domain/5/data/memory/target-ack",
                                            default=None) == b"524288" or None, timeout=10)
    assert acked                                # wait_for raises WaitTimeout otherwise


def test_ignores_a_missing_target(xs: Sandbox) -> None:
    guest = xs.guest(5)
    xs.start(follow_memory, guest)
    dom0 = xs.dom0()
    dom0.write("/local/domain/5/memory/target", "1024")
    dom0.wait_for(lambda: dom0.read("/local/domain/5/data/memory/target-ack", default=None),
                  timeout=10)
    dom0.delete("/local/domain/5/memory/target")
    dom0.write("/local/domain/5/memory/target", "2048")
    assert dom0.wait_for(lambda: dom0.read("/local/domain/5/data/memory/target-ack")
                         == b"2048" or None, timeout=10)


def test_supervised_agent_survives_a_bad_value(xs: Sandbox) -> None:
    xs.start(tree(), domid=5)                   # as `xsactor run` runs it, on domain 5
    dom0 = xs.dom0()
    dom0.write("/local/domain/5/memory/target", "not a number")   # follow_memory crashes
    dom0.write("/local/domain/5/memory/target", "4096")
    assert dom0.wait_for(lambda: dom0.read("/local/domain/5/data/memory/target-ack",
                                           default=None) == b"4096" or None, timeout=10)
