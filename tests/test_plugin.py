"""The pytest plugin as an agent author meets it, run with pytester (test files in a temporary
directory, the plugin loaded through its entry point as for an installed package)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(source)  # named after the test: unique in the session
    return pytester.runpytest_inprocess("-p", "no:randomly", "-p", "no:cacheprovider", *args)


def test_clients_and_the_domain_lifecycle(pytester: pytest.Pytester) -> None:
    result = run(pytester, '''
import pytest
from xsactor.bus import DomainGone

def test_life(xs, xs_dom0):
    guest = xs.guest(5)                       # created as xl would, then connected
    assert guest.domid() == 5
    guest.write("data/ready", "1")
    assert xs_dom0.read("/local/domain/5/data/ready") == b"1"
    token = xs_dom0.watch_release_domain()
    xs_dom0.next_event(token, timeout=5)      # the registration event
    xs.shutdown(5)
    assert xs_dom0.next_event(token, timeout=5) == ("@releaseDomain", token)
    xs.create_domain(6)
    xs.crash(6)
    assert xs_dom0.next_event(token, timeout=5) == ("@releaseDomain", token)
    watched = guest.watch("data")
    guest.next_event(watched, timeout=5)
    xs.destroy(5)
    with pytest.raises(DomainGone):
        guest.next_event(watched, timeout=5)
    assert not xs_dom0.exists("/local/domain/5")
''')
    result.assert_outcomes(passed=1)


def test_default_connection_does_not_leak_into_the_next_test(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XENSTORED_PATH", "/nonexistent/xenstored-socket")
    result = run(pytester, '''
import os
import pytest
import xsactor

def test_first(xs_default):
    xsactor.write("/first", "1")
    assert xsactor.read("/first") == b"1"
    assert xsactor.default_client().state is xsactor.State.CONNECTED

def test_second_gets_its_own_daemon(xs_default):
    assert not xsactor.exists("/first")       # a fresh daemon, not the first test's

def test_without_the_fixture_nothing_is_left_over():
    # the default connection was closed and $XENSTORED_PATH restored: connecting fails
    # instead of reaching a dead daemon through a connection that says CONNECTED
    assert os.environ["XENSTORED_PATH"] == "/nonexistent/xenstored-socket"
    with pytest.raises(OSError):
        xsactor.read("/first")

def test_a_default_made_by_hand_is_closed_too(xs):
    client = xsactor.connect(xs.socket_path)
    pytest.shared = client

def test_it_was(xs):
    assert pytest.shared.conn.closed
''')
    result.assert_outcomes(passed=5)


def test_agents_are_stopped_and_checked_for_leaks(pytester: pytest.Pytester) -> None:
    result = run(pytester, '''
import gevent
import xsactor

def echo(client):
    token = client.watch("/in")
    while True:
        client.next_event(token)
        client.write("/out", client.read("/in", default=b""))

def test_clean_agent(xs):
    client = xs.client()                      # the sandbox closes it
    xs.start(echo, client)
    xs.dom0().write("/in", "hello")
    assert xs.dom0().wait_for(lambda: xs.dom0().read("/out", default=None) == b"hello"
                              or None, timeout=5)

def leaky_greenlet():
    gevent.spawn(gevent.sleep, 1000)          # never stopped
    gevent.sleep(1000)

def test_leaked_greenlet(xs):
    xs.start(leaky_greenlet)
    gevent.sleep(0.01)

def test_leaked_watch(xs):
    def agent():
        client = xsactor.Client(xs.socket_path)   # never closed
        client.watch("/w")
        gevent.sleep(1000)
    xs.start(agent)
    gevent.sleep(0.05)

def test_stop_function(xs):
    stopped = []
    xs.start(lambda: "handle", stop=stopped.append)
    xs.stop_agents()
    assert stopped == ["handle"]
''')
    result.assert_outcomes(passed=4, errors=2)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaked_greenlet*",
                                 "*LeakError: left behind after the agents stopped*",
                                 "*ERROR at teardown of test_leaked_watch*"])


def test_parametrised_over_daemon_kinds(pytester: pytest.Pytester) -> None:
    result = run(pytester, '''
import pytest

@pytest.mark.xsactor_daemons("inprocess", "embedded")
def test_both(xs, xs_daemon_kind):
    xs.dom0().write("/k", xs_daemon_kind)
    xs.dom0().set_perms("/k", ["n0", "r3"])
    assert xs.guest(3).read("/k") == xs_daemon_kind.encode()

def test_default(xs, xs_daemon_kind):
    assert xs_daemon_kind == "inprocess"
''', "-v")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_both?inprocess? PASSED*", "*test_both?embedded? PASSED*"])


def test_command_line_option_and_reference_marker(pytester: pytest.Pytester) -> None:
    result = run(pytester, '''
def test_any(xs, xs_daemon_kind):
    assert xs.dom0().read("/local/domain/0/name") == b"Domain-0"
''', "--xsactor-daemons=inprocess,reference", "-m", "not reference", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    bad = run(pytester, "def test_x(xs): pass\n", "--xsactor-daemons=nonsense")
    assert bad.ret != pytest.ExitCode.OK
    bad.stdout.fnmatch_lines(["*daemon kind 'nonsense' is not one of*"])


def test_a_supervision_tree_under_the_test(pytester: pytest.Pytester) -> None:
    result = run(pytester, '''
import xsactor
from xsactor.actors import process as px
from xsactor.actors import supervisor as sup
from xsactor.actors.childspec import ChildSpec, SupFlags
from xsactor.actors.restarts import Backoff


def balloon():
    while True:
        px.receive(("watch_event", px.ANY, "target"))
        xsactor.write("data/balloon", str(xsactor.read_integer("memory/target")))


def tree(child=balloon):
    return sup.supervisor_spec("agent", SupFlags("one_for_one", intensity=5, period=10), [
        ChildSpec("balloon", lambda: px.spawn_link(child),
                  watches=[("memory/target", "target")], backoff=Backoff(min=0.01, max=0.1)),
    ])


def test_restarted_after_a_bad_value(xs):
    agent = xs.start(tree(), domid=5)
    dom0 = xs.dom0()
    target = "/local/domain/5/memory/target"
    dom0.write(target, "abc")                           # crashes the child
    dom0.write(target, "2048")
    assert dom0.wait_for(lambda: dom0.read("/local/domain/5/data/balloon", default=None)
                         == b"2048" or None, timeout=10)
    [child] = sup.which_children(agent.handle)
    assert child.id == "balloon" and px.is_alive(child.pid)
    xs.stop_agents()
    assert agent.exit_reason == "shutdown"


def stray():
    px.spawn(px.receive)                                # unlinked: outlives the tree
    px.receive()


def test_a_leaking_tree(xs):
    xs.start(tree(stray), domid=5)
''')
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_a_leaking_tree*",
                                 "*LeakError: left behind after the agents stopped: [<0.*"])


def test_trees_on_their_own_connections_and_a_daemon_restart(pytester: pytest.Pytester) -> None:
    result = run(pytester, '''
import pytest

from xsactor.actors import process as px
from xsactor.actors import supervisor as sup
from xsactor.actors.childspec import ChildSpec, SupFlags
from xsactor.bus.client import Client
from xsactor.bus.connection import State


def reporter(client):
    while True:
        px.receive(("watch_event", px.ANY, "target"))
        client.write("data/seen", client.read_str("memory/target", default="none"))


def tree(name, client, intensity=5):
    return sup.supervisor_spec(name, SupFlags("one_for_one", intensity=intensity, period=10), [
        ChildSpec("reporter", lambda: px.spawn_link(reporter, client),
                  watches=[("memory/target", "target")])])


def seen(dom0, domid, value):
    path = f"/local/domain/{domid}/data/seen"
    return dom0.wait_for(lambda: dom0.read_str(path, default=None) == value or None, 10)


def test_two_trees_two_connections(xs):
    dom0, guest = xs.dom0(), xs.guest(5)
    backend = xs.start(tree("backend", dom0), client=dom0)  # watches dom0's memory/target
    xs.start(tree("frontend", guest), client=guest)         # watches the guest's
    [child] = sup.which_children(backend.handle)
    down = px.monitor(child.pid)
    px.exit(child.pid, "boom")  # restarted after the frontend's tree started: still on dom0's
    px.receive(("DOWN", down, "process", child.pid, px.ANY), 10)
    assert sup.which_children(backend.handle)[0].pid != child.pid
    dom0.write("/local/domain/0/memory/target", "1")
    dom0.write("/local/domain/5/memory/target", "5")
    assert seen(dom0, 0, "1") and seen(dom0, 5, "5")


def test_a_tree_that_ends_by_itself(xs):
    guest = xs.guest(5)

    def crashing():
        raise RuntimeError("boom")

    spec = sup.supervisor_spec("doomed", SupFlags(intensity=1, period=10), [
        ChildSpec("crasher", lambda: px.spawn_link(crashing))])
    agent = xs.start(spec, client=guest)
    assert agent.wait(10) == "shutdown"                 # it gave up


def test_a_client_class_of_ones_own(xs):
    class Counting(Client):
        writes = 0

        def write(self, *args, **kwargs):
            Counting.writes += 1
            return super().write(*args, **kwargs)

    client = xs.client(5, client_class=Counting, backoff_initial=0.02)
    client.write("data/x", "1")
    assert isinstance(client, Counting) and Counting.writes == 1


def test_the_daemon_restarts_under_a_tree(xs):
    dom0, guest = xs.dom0(), xs.guest(5)
    xs.start(tree("frontend", guest), client=guest)
    guest.write("data/stale", "1")
    xs.stop_daemon()
    assert guest.conn.wait_state(State.RECONNECTING, timeout=10)
    xs.start_daemon()                                   # fresh: the guest built again
    assert guest.conn.wait_state(State.CONNECTED, timeout=10)
    assert dom0.read_str("/local/domain/5/name") == "guest5"
    assert not dom0.exists("/local/domain/5/data/stale")
    dom0.write("/local/domain/5/memory/target", "7")    # the declared watch is back
    assert seen(dom0, 5, "7")
''')
    result.assert_outcomes(passed=4)
