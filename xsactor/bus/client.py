"""The XenStore API on a bus connection: read, write, watch, transactions, wait_for.

Everything the client can check is checked before anything is sent: paths (``paths.validate``;
relative ones are sent as given, the daemon resolves them), payload sizes (4096 on the socket,
4080 on the device) and permission strings. Errors are the codec's typed exceptions (``ENOENT``,
``EACCES``, ...); a lost connection raises :class:`ConnectionLost`.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import random
import re
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import gevent
from gevent import GreenletExit

from ..actors.mailbox import Mailbox, ReceiveTimeout, mailbox_of
from ..logs import get_logger
from ..protocol import Op
from ..protocol.errors import (
    E2BIG,
    EACCES,
    EAGAIN,
    EEXIST,
    EINVAL,
    ENOENT,
    ConnectionLost,
    XenStoreError,
)
from ..protocol.packets import Arg, join_args, split_args, to_bytes
from ..protocol.paths import (
    INTRODUCE_DOMAIN,
    RELEASE_DOMAIN,
    SPECIAL_NODES,
    canonicalize,
    home_path,
    validate,
)
from ..protocol.perms import Perm, acl_payload, parse_acl
from .connection import _DEFAULT, Connection, State, Watch, events_of
from .errors import BusClosed, DomainGone, WaitTimeout
from .transports import DEVICE, SOCKET, Connector, Transport, endpoint_for, open_transport

__all__ = ["Client", "TransactionId", "parse_integer"]

log = get_logger(__name__)

T = TypeVar("T")
_NOTHING: Any = object()
_VALIDATION_HOME = home_path(0)
"""Any ``/local/domain/<n>`` (n of at most 5 digits) gives relative paths the same budget."""
_PATH_CACHE_MAX = 4096
CLOSE_ROLLBACK_TIMEOUT = 5.0
_tokens = itertools.count(1)
_RESUMED = "transaction ended by a resume (migration); retry it"


_INTEGER = re.compile(rb"[+-]?[0-9]+")
_LOST = "xsactor:connection_lost"
"""The tag of the ``(_LOST, client, exception)`` message a client puts into its subscribers'
mailboxes when its connection is closed for good."""


def parse_integer(value: bytes, path: str | None = None) -> int:
    """``value`` as LING's ``list_to_integer`` reads it: an optional sign and decimal digits,
    nothing else (no spaces, underscores or other scripts' digits). EINVAL otherwise."""
    if _INTEGER.fullmatch(value) is None:
        raise EINVAL(f"not an integer: {value[:32]!r}", path=path)
    return int(value)


class TransactionId(int):
    """A transaction id (an int), remembering which connection generation started it.

    After a reconnect the daemon has forgotten it: using it raises EAGAIN, so retry loops work.
    """

    generation: int

    def __new__(cls, value: int, generation: int) -> TransactionId:
        self = super().__new__(cls, value)
        self.generation = generation
        return self

    def __repr__(self) -> str:
        return f"TransactionId({int(self)}, generation={self.generation})"


def _value_bytes(value: Arg | bytearray | memoryview) -> bytes:
    """A value as the codec sends it (``to_bytes``); a bytearray or memoryview as its bytes."""
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return to_bytes(value)


def _token_bytes(token: Any) -> bytes:
    wire = token.encode() if isinstance(token, str) else token
    if not isinstance(wire, bytes):
        raise TypeError(f"a watch token is str or bytes, not {type(token).__name__}")
    if b"\0" in wire:
        raise EINVAL("a watch token may not contain NUL")
    return wire


class Client:
    """The XenStore API over one :class:`Connection`.

    ``Client()`` connects as libxenstore does (``$XENSTORED_PATH``, else
    ``$XENSTORED_RUNDIR/socket``, else the xenbus device); ``Client(path)`` connects to a
    socket or opens a device (``kind`` forces one); ``Client(transport=...)`` uses an open
    transport (no reconnect); ``Client(connector=...)`` calls ``connector()`` for a fresh
    transport on every (re)connect. ``name``, ``reconnect``, ``default_timeout`` and the
    ``backoff_*`` delays go to :class:`Connection` (on the device a ``default_timeout`` of
    None means the transport's ``request_timeout``: no request there waits forever).
    """

    def __init__(self, path: str | None = None, *, kind: str | None = None,
                 transport: Transport | None = None, connector: Connector | None = None,
                 connect_timeout: float | None = 10.0, name: str | None = None,
                 reconnect: bool = True, default_timeout: float | None = None,
                 backoff_initial: float = 0.05, backoff_max: float = 5.0) -> None:
        if connector is None:
            connector = self._connector_for(path, kind, transport, connect_timeout)
            if transport is not None:
                reconnect = False
        self.conn = Connection(connector, name=name, reconnect=reconnect,
                               default_timeout=default_timeout,
                               backoff_initial=backoff_initial, backoff_max=backoff_max)
        self._domid: int | None = None
        self._valid: dict[str, bytes] = {}
        self._recorders: dict[Any, set[str]] = {}
        """Per greenlet running :meth:`wait_for`: the paths it read in this run."""
        self._told_of_loss: weakref.WeakSet[Mailbox] = weakref.WeakSet()
        """Mailboxes of this client's watchers and receivers: each gets a ``_LOST`` message
        when the connection is closed for good (not the bus's ``conn.subscribers``)."""
        self._gone: ConnectionLost | None = None
        self._closed = False
        self.conn.subscribe_state(self._state_changed)
        self.conn.open()

    def _connector_for(self, path: str | None, kind: str | None, transport: Transport | None,
                       timeout: float | None) -> Connector:
        if transport is not None:
            handed = [transport]

            def once() -> Transport:
                if not handed:
                    raise ConnectionLost("a transport handed in cannot be reopened")
                return handed.pop()
            return once
        if path is None:
            return lambda: open_transport(timeout=timeout)
        endpoint = endpoint_for(path, kind)  # resolved once: reconnects reopen the same kind

        def connect() -> Transport:
            try:
                return endpoint.open(timeout)
            except FileNotFoundError:
                if endpoint.kind == SOCKET and self.conn.generation and self._domid:
                    self._domain_gone(endpoint.path)
                raise
        return connect

    def _domain_gone(self, path: str) -> None:
        """A guest's reconnect found its socket gone: the embedded xenstored removes a
        domain's socket when it destroys the domain (a stopped daemon leaves it behind,
        refusing connections). Only for a guest whose domid this client has learnt."""
        self._gone = DomainGone(f"{path} is gone: domain {self._domid} was destroyed")
        log.warning("domain destroyed, not reconnecting", path=path, domid=self._domid)
        self.conn.close()
        raise GreenletExit  # ends the owner's reconnect loop now (we run in the owner)

    def _state_changed(self, conn: Connection, state: State) -> None:
        """Subscribers learn of a final close."""
        if state is State.CLOSED:
            lost = self._lost()
            for box in list(self._told_of_loss):
                box.put((_LOST, self, lost))

    def _lost(self) -> ConnectionLost:
        """Why the connection is closed for good."""
        if self._gone is not None:
            return self._gone
        if self._closed:
            return BusClosed(f"{self.conn.name}: connection closed")
        return ConnectionLost(f"{self.conn.name}: connection lost, not reconnecting")

    # -- lifetime and state --------------------------------------------------------------
    def close(self) -> None:
        """Close the connection; on the device, end the open transactions first (the
        kernel's own cleanup of a closed file unbalances its suspend accounting)."""
        if self.conn.kind == DEVICE and not self.conn.closed:
            for tx_id in self.conn.open_transactions():
                self._quiet_rollback(tx_id, timeout=CLOSE_ROLLBACK_TIMEOUT)
        self._closed = True
        self.conn.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state(self) -> State:
        return self.conn.state

    @property
    def kind(self) -> str | None:
        """``"socket"`` or ``"device"``: the current transport's kind."""
        return self.conn.kind

    def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until connected (True) or closed / timed out (False)."""
        self.conn.wait_state(State.CONNECTED, State.CLOSED, timeout=timeout)
        return self.conn.state is State.CONNECTED

    # -- checks --------------------------------------------------------------------------
    def _path(self, path: str, special: bool = False) -> bytes:
        """Validate ``path`` (EINVAL before sending) and return it as a NUL-ended argument."""
        if not special:
            wire = self._valid.get(path)
            if wire is not None:
                return wire
        if not isinstance(path, str):
            if isinstance(path, bytes):
                path = path.decode("ascii", "surrogateescape")
            else:
                raise TypeError(f"a XenStore path is str, not {type(path).__name__}")
        validate(path, _VALIDATION_HOME, allow_special=special)
        wire = join_args(path)
        if not special:
            if len(self._valid) >= _PATH_CACHE_MAX:
                self._valid.clear()
            self._valid[path] = wire
        return wire

    def _tx(self, tid: int | None) -> int:
        """The wire tx_id; EAGAIN for a transaction a reconnect has ended, ENOENT for one
        this client has not started (or has ended), TypeError for what is not an id."""
        if tid is None or (tid == 0 and type(tid) is int):
            return 0
        if type(tid) is not TransactionId and (isinstance(tid, bool) or type(tid) is not int):
            raise TypeError(f"tid is a transaction id (an int from transaction()), "
                            f"not {type(tid).__name__}")
        generation = getattr(tid, "generation", None)
        if generation is not None and generation != self.conn.generation:
            raise EAGAIN("transaction ended by a reconnect; retry it")
        if not self.conn.is_open_transaction(int(tid)):
            raise ENOENT(f"unknown transaction {int(tid)} (not started on this connection, "
                         f"or already ended)")
        return int(tid)

    def _stale(self, tx_id: int) -> bool:
        """After an ENOENT in a transaction: whether the transaction itself is unknown (on
        the device, a resume ended it; the kernel lets its requests reach xenstored, which
        answers ENOENT). GET_DOMAIN_PATH fails only for an unknown tx_id."""
        if not tx_id or self.conn.kind != DEVICE:
            return False
        try:
            self.conn.call(Op.GET_DOMAIN_PATH, join_args(0), tx_id)
        except ENOENT:
            return True
        except (XenStoreError, ConnectionLost):
            pass
        return False

    def _call(self, op: int, payload: bytes, tid: int | None, timeout: Any,
              path: str | None) -> bytes:
        """``conn.call`` in transaction ``tid``; EAGAIN when the transaction is stale."""
        tx_id = self._tx(tid) if tid else 0
        try:
            return self.conn.call(op, payload, tx_id, timeout=timeout, path=path)
        except ENOENT:
            if self._stale(tx_id):
                raise EAGAIN(_RESUMED, path=path) from None
            raise

    def _record(self, path: str) -> None:
        recorder = self._recorders.get(gevent.getcurrent())
        if recorder is not None:
            recorder.add(path)

    # -- reading -------------------------------------------------------------------------
    def read(self, path: str, tid: int | None = None, *, default: Any = _NOTHING,
             timeout: Any = _DEFAULT) -> bytes:
        """The value of ``path`` (bytes, exactly as stored).

        With ``default``, a missing node (ENOENT) gives ``default`` instead of raising.
        """
        payload = self._path(path)
        if self._recorders:
            self._record(path)
        try:
            return self._call(Op.READ, payload, tid, timeout, path)
        except ENOENT:
            if default is _NOTHING:
                raise
            return default

    def read_str(self, path: str, tid: int | None = None, *, default: Any = _NOTHING,
                 timeout: Any = _DEFAULT) -> str:
        """The value of ``path`` decoded as UTF-8."""
        value = self.read(path, tid, default=_NOTHING if default is _NOTHING else None,
                          timeout=timeout)
        if value is None:
            return default
        try:
            return value.decode()
        except UnicodeDecodeError as exc:
            raise EINVAL(f"value is not UTF-8 (byte {value[exc.start]:#04x} at {exc.start}; "
                         f"read it as bytes)", path=path) from None

    def read_integer(self, path: str, tid: int | None = None, *, default: Any = _NOTHING,
                     timeout: Any = _DEFAULT) -> int:
        """The value of ``path`` as an int (an optional sign and decimal digits, as LING's
        ``list_to_integer``); EINVAL (a ValueError) naming the path if it is not one."""
        value = self.read(path, tid, default=_NOTHING if default is _NOTHING else None,
                          timeout=timeout)
        if value is None:
            return default
        return parse_integer(value, path)

    def exists(self, path: str, tid: int | None = None, *, timeout: Any = _DEFAULT) -> bool:
        """Whether ``path`` exists (ENOENT gives False; EACCES is raised)."""
        return self.read(path, tid, default=None, timeout=timeout) is not None

    def list(self, path: str, tid: int | None = None, *,
             timeout: Any = _DEFAULT) -> list[str]:
        """The names of ``path``'s children (DIRECTORY; DIRECTORY_PART when it is too big)."""
        payload = self._path(path)
        if self._recorders:
            self._record(path)
        try:
            reply = self._call(Op.DIRECTORY, payload, tid, timeout, path)
        except E2BIG:
            reply = self._directory_parts(path, payload, self._tx(tid), timeout)
        return [name.decode() for name in split_args(reply)]

    def _directory_parts(self, path: str, payload: bytes, tx_id: int, timeout: Any,
                         restarts: int = 16) -> bytes:
        """The whole child list through DIRECTORY_PART, restarting when the generation
        changes between chunks (as libxenstore does)."""
        for _ in range(restarts):
            names = bytearray()
            generation = None
            offset = 0
            while True:
                reply = self.conn.call(Op.DIRECTORY_PART, payload + join_args(offset), tx_id,
                                       timeout=timeout, path=path)
                gen, sep, chunk = reply.partition(b"\0")
                if not sep:
                    raise EINVAL("malformed DIRECTORY_PART reply", path=path)
                if generation is None:
                    generation = gen
                elif gen != generation:
                    break  # the directory changed: start again
                if chunk in (b"", b"\0") or chunk.endswith(b"\0\0"):
                    names += chunk[:-1]
                    return bytes(names)
                names += chunk
                offset += len(chunk)
        raise EAGAIN("directory kept changing while being listed", path=path)

    def get_perms(self, path: str, tid: int | None = None, *,
                  timeout: Any = _DEFAULT) -> builtins.list[str]:
        """The ACL of ``path`` as strings, owner first (``["n0", "r5"]``)."""
        payload = self._path(path)
        if self._recorders:
            self._record(path)
        reply = self._call(Op.GET_PERMS, payload, tid, timeout, path)
        return [entry.decode() for entry in split_args(reply)]

    # -- writing -------------------------------------------------------------------------
    def write(self, path: str, value: Arg | bytearray | memoryview, tid: int | None = None,
              *, timeout: Any = _DEFAULT) -> None:
        """Write ``value`` (str as UTF-8, bytes as is, int in decimal); creates parents."""
        payload = self._path(path) + _value_bytes(value)
        self._call(Op.WRITE, payload, tid, timeout, path)

    def mkdir(self, path: str, tid: int | None = None, *, timeout: Any = _DEFAULT) -> None:
        """Create ``path`` with an empty value (nothing happens if it exists)."""
        self._call(Op.MKDIR, self._path(path), tid, timeout, path)

    def delete(self, path: str, tid: int | None = None, *, timeout: Any = _DEFAULT) -> None:
        """Remove ``path`` and everything below it."""
        self._call(Op.RM, self._path(path), tid, timeout, path)

    rm = delete

    def set_perms(self, path: str, perms: Iterable[str | bytes | Perm],
                  tid: int | None = None, *, timeout: Any = _DEFAULT) -> None:
        """Set ``path``'s ACL: entries like ``"r24"`` or :class:`Perm`, owner first.

        ``@introduceDomain`` and ``@releaseDomain`` have ACLs too.
        """
        if isinstance(perms, str | bytes):
            raise TypeError("set_perms takes a list of permissions, e.g. ['n0', 'r5']")
        special = isinstance(path, str) and path.startswith("@")
        if special and path not in SPECIAL_NODES:
            raise EINVAL("only @introduceDomain and @releaseDomain have permissions",
                         path=path)
        try:
            acl = parse_acl(perms)
        except EINVAL as exc:
            raise EINVAL(str(exc), path=path) from None
        payload = self._path(path, special) + acl_payload(acl)
        self._call(Op.SET_PERMS, payload, tid, timeout, path)

    # -- domains -------------------------------------------------------------------------
    def domid(self, *, timeout: Any = _DEFAULT) -> int:
        """This connection's domain: the relative key ``domid`` (0 on the dom0 socket)."""
        if self._domid is None:
            try:
                self._domid = self.read_integer("domid", timeout=timeout)
            except (ENOENT, EACCES):
                if self.conn.kind != SOCKET:
                    raise
                self._domid = 0  # a bare privileged socket without xen-init-dom0's keys
        return self._domid

    @property
    def home(self) -> str:
        """Where relative paths point: ``/local/domain/<domid>``."""
        return home_path(self.domid())

    def get_domain_path(self, domid: int, *, timeout: Any = _DEFAULT) -> str:
        """``/local/domain/<domid>`` as the daemon says it."""
        if isinstance(domid, bool) or not isinstance(domid, int):
            raise TypeError("domid is an int")
        reply = self.conn.call(Op.GET_DOMAIN_PATH, join_args(domid), timeout=timeout)
        return reply.rstrip(b"\0").decode()

    # -- watches -------------------------------------------------------------------------
    def _watch_key(self, path: str, wire_token: bytes,
                   timeout: Any = _DEFAULT) -> tuple[str, bytes]:
        """A watch's identity, as the daemon's: the absolute path and the token."""
        if not path.startswith(("/", "@")):
            # When our domid is unknowable, the relative form stands for itself.
            with contextlib.suppress(XenStoreError, ConnectionLost):
                path = canonicalize(path, home_path(self.domid(timeout=timeout)))
        return path, wire_token

    def watch(self, path: str, token: Any = None, *, mailbox: Mailbox | None = None,
              timeout: Any = _DEFAULT) -> Any:
        """Watch ``path`` (and everything below it); returns the token.

        Events arrive as ``("watch_event", path, token)`` in the calling greenlet's mailbox
        (or ``mailbox``), starting with one right after registration. The watch is
        re-registered after every reconnect (and fires again then), and removed when the
        subscriber greenlet is gone.
        """
        payload = self._path(path, special=True)
        if token is None:
            token = f"xsactor:{next(_tokens)}"
        wire_token = _token_bytes(token)
        payload += join_args(wire_token)
        if len(payload) > self.conn.max_payload:  # before anything is sent (domid included)
            raise E2BIG(f"WATCH payload of {len(payload)} bytes is over the "
                        f"{self.conn.max_payload}-byte limit", path=path)
        deadline = None if timeout is _DEFAULT or timeout is None else (
            time.monotonic() + timeout)
        key = self._watch_key(path, wire_token, timeout)  # may ask the daemon for our domid
        if deadline is not None:
            timeout = max(0.0, deadline - time.monotonic())
        if self.conn.find_watch(key) is not None:
            raise EEXIST("already watched with this token", path=path)
        box = mailbox if mailbox is not None else mailbox_of()
        self.conn.subscribers.wait_unwatched(wire_token, path, self.conn.timeout_of(timeout))
        self._told_of_loss.add(box)
        watch = Watch(path, token, wire_token, key, box)
        generation = self.conn.generation
        self.conn.add_watch(watch)
        try:
            self.conn.call(Op.WATCH, payload, timeout=timeout, path=path)
        except BaseException:
            self.conn.remove_watch(watch)
            if watch.generation != generation:  # a reconnect re-registered it meanwhile
                self.conn.send_nowait(Op.UNWATCH, payload)
            raise
        return token

    def unwatch(self, path: str, token: Any, *, timeout: Any = _DEFAULT) -> None:
        """Remove a watch; its events still queued in the subscriber's mailbox are dropped.

        ``path`` may be spelt another way (relative or absolute) than at :meth:`watch`: the
        UNWATCH sent uses the registered spelling (the kernel compares it as a string)."""
        self._path(path, special=True)
        wire_token = _token_bytes(token)
        watch = self.conn.find_watch(self._watch_key(path, wire_token))
        if watch is None:
            raise ENOENT("not watched with this token", path=path)
        self.conn.remove_watch(watch)
        # ENOENT: gone on the daemon already; ConnectionLost: gone with the connection (and
        # no longer re-registered).
        with contextlib.suppress(ENOENT, ConnectionLost):
            self.conn.call(Op.UNWATCH, join_args(watch.path, wire_token), timeout=timeout,
                           path=path)

    def unwatch_nowait(self, path: str, token: Any) -> bool:
        """Remove a watch without waiting (for exit hooks, which must not block): no event is
        routed from now on, UNWATCH goes to the daemon in the background. False if it was not
        watched."""
        watch = self.conn.find_watch(self._watch_key(path, _token_bytes(token)))
        if watch is None:
            return False
        self.conn._reap(watch, "released")
        return True

    def watch_introduce_domain(self, token: Any = None, **kw: Any) -> Any:
        """Watch ``@introduceDomain`` (a new domain was introduced); returns the token."""
        return self.watch(INTRODUCE_DOMAIN, token, **kw)

    def watch_release_domain(self, token: Any = None, **kw: Any) -> Any:
        """Watch ``@releaseDomain`` (a domain was released, shut down or died)."""
        return self.watch(RELEASE_DOMAIN, token, **kw)

    def next_event(self, token: Any = None, *, timeout: float | None = None,
                   mailbox: Mailbox | None = None) -> tuple[str, Any]:
        """The next ``(path, token)`` watch event in the caller's mailbox (or ``mailbox``),
        for ``token`` only if given, leaving other messages queued.

        Raises ReceiveTimeout, or :class:`ConnectionLost` once the connection is closed for
        good (no reconnect will follow) and no matching event is left.
        """
        _kind, path, got = self.receive(timeout, events_of(token), mailbox=mailbox)
        return path, got

    def receive(self, timeout: float | None = None, match: Callable[[Any], bool] | None = None,
                *, mailbox: Mailbox | None = None) -> Any:
        """The caller's next (matching) message, as :meth:`Mailbox.receive`, except that
        it raises :class:`ConnectionLost` (:class:`DomainGone`, :class:`BusClosed`) instead
        of waiting for ever once this client's connection is closed for good."""
        box = mailbox if mailbox is not None else mailbox_of()
        self._told_of_loss.add(box)

        def wanted(message: Any) -> bool:
            return self._is_loss(message) or match is None or match(message)

        if self.conn.state is State.CLOSED:
            try:
                message = box.receive(0, wanted)
            except ReceiveTimeout:
                raise self._lost() from None
        else:
            message = box.receive(timeout, wanted)
        if self._is_loss(message):
            raise message[2]
        return message

    def _is_loss(self, message: Any) -> bool:
        return (type(message) is tuple and len(message) == 3 and message[0] == _LOST
                and message[1] is self)

    # -- transactions --------------------------------------------------------------------
    def transaction(self, *, timeout: Any = _DEFAULT) -> TransactionId:
        """Start a transaction; pass the id as ``tid`` to reads and writes, then commit."""
        generation = self.conn.generation
        reply = self.conn.call(Op.TRANSACTION_START, b"\0", timeout=timeout)
        tid = TransactionId(int(reply.rstrip(b"\0")), generation)
        self.conn.hold_transaction(tid)  # a process that dies ends it
        return tid

    def commit(self, tid: int, *, timeout: Any = _DEFAULT) -> None:
        """End the transaction, keeping its changes; EAGAIN if it conflicted (retry it)."""
        tx_id = self._tx(tid)
        try:
            self.conn.call(Op.TRANSACTION_END, b"T\0", tx_id, timeout=timeout)
        finally:
            self.conn.release_transaction(tx_id)

    def rollback(self, tid: int, *, timeout: Any = _DEFAULT) -> None:
        """End the transaction, dropping its changes (a no-op after a reconnect)."""
        try:
            tx_id = self._tx(tid)
        except EAGAIN:
            return  # the daemon dropped it with the old connection
        try:
            self.conn.call(Op.TRANSACTION_END, b"F\0", tx_id, timeout=timeout)
        finally:
            self.conn.release_transaction(tx_id)

    def _quiet_rollback(self, tid: int, timeout: Any = _DEFAULT) -> None:
        try:
            self.rollback(tid, timeout=timeout)
        except (XenStoreError, ConnectionLost) as exc:
            log.debug("rollback failed", tx_id=int(tid), error=type(exc).__name__)

    def transact(self, fn: Callable[[TransactionId], T], *, retries: int = 16,
                 backoff: float = 0.002, backoff_max: float = 0.25,
                 reconnect_timeout: float | None = 30.0) -> T:
        """Run ``fn(tid)`` in a transaction and commit; on EAGAIN rerun it.

        Reruns happen after a jittered, growing pause, at most ``retries`` times (then EAGAIN
        is raised). The transaction is always ended: an exception in ``fn`` rolls it back and
        propagates. A connection lost while ``fn`` runs counts as a conflict: ``transact``
        waits (up to ``reconnect_timeout``) for the reconnect and reruns. A connection lost
        during the commit raises ConnectionLost: whether it committed is unknown.
        """
        attempt = 0
        while True:
            try:
                tid = self.transaction()
            except ConnectionLost as exc:
                if not self._reconnected(exc, reconnect_timeout):
                    raise
            else:
                try:
                    result = fn(tid)
                except EAGAIN:
                    self._quiet_rollback(tid)
                except ConnectionLost as exc:
                    if not self._reconnected(exc, reconnect_timeout):
                        raise
                except GreenletExit:  # killed: end it without waiting (the greenlet is dying)
                    with contextlib.suppress(EAGAIN):
                        self.conn.send_nowait(Op.TRANSACTION_END, b"F\0", self._tx(tid))
                        self.conn.release_transaction(int(tid))
                    raise
                except BaseException:
                    self._quiet_rollback(tid)
                    raise
                else:
                    with contextlib.suppress(EAGAIN):
                        self.commit(tid)
                        return result
            attempt += 1
            if attempt > retries:
                raise EAGAIN(f"transaction still conflicting after {retries} retries")
            gevent.sleep(random.uniform(0, min(backoff * (2 ** attempt), backoff_max)))

    def _reconnected(self, lost: ConnectionLost, timeout: float | None) -> bool:
        """After ``lost``: whether the bus is connected again within ``timeout`` (never after
        :class:`BusClosed`), so the caller may run its work again."""
        return not isinstance(lost, BusClosed) and self.wait_connected(timeout)

    # -- wait_for ------------------------------------------------------------------------
    def wait_for(self, fn: Callable[[], T | None], timeout: float | None = None) -> T:
        """Rerun ``fn()`` whenever a path it read changes, until it returns non-None.

        The paths ``fn`` reads through this client (read, read_str, read_integer, exists,
        list, get_perms) are watched; each run watches exactly what that run read. Raises
        :class:`WaitTimeout` after ``timeout`` seconds.
        """
        me = gevent.getcurrent()
        box = mailbox_of(me)
        deadline = None if timeout is None else time.monotonic() + timeout
        token = f"xsactor:wait:{next(_tokens)}"
        is_ours = events_of(token)
        watched: set[str] = set()
        try:
            while True:
                previous = self._recorders.get(me)
                read: set[str] = set()
                self._recorders[me] = read
                try:
                    result = fn()
                except ConnectionLost as exc:
                    if not self._reconnected(exc, self._remaining(deadline)):
                        raise
                    continue
                finally:
                    if previous is None:
                        del self._recorders[me]
                    else:
                        self._recorders[me] = previous
                        previous |= read
                if result is not None:
                    return result
                for path in watched - read:
                    self._quiet_unwatch(path, token)
                    watched.discard(path)
                for path in sorted(read - watched):
                    self.watch(path, token, mailbox=box)
                    watched.add(path)
                try:
                    box.receive(self._remaining(deadline), is_ours)
                except ReceiveTimeout:
                    raise WaitTimeout(f"condition not met within {timeout} s") from None
                box.purge(is_ours)  # one rerun covers every change seen so far
        finally:
            for path in watched:
                self._quiet_unwatch(path, token)

    @staticmethod
    def _remaining(deadline: float | None) -> float | None:
        if deadline is None:
            return None
        return max(0.0, deadline - time.monotonic())

    def _quiet_unwatch(self, path: str, token: Any) -> None:
        with contextlib.suppress(XenStoreError, ConnectionLost):
            self.unwatch(path, token)

    def __repr__(self) -> str:
        return f"<Client {self.conn!r}>"
