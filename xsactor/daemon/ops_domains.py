"""Requests on domains: GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED, INTRODUCE, RELEASE, RESUME,
SET_TARGET; and what follows a domain's end (RELEASE, or the simulated hypervisor's
:func:`set_domain_state`): its connections close, its nodes go, ``@releaseDomain`` fires
(§8 of ``xenstore-semantics.md``). The records themselves are in ``domains``."""

from __future__ import annotations

from ..logs import get_logger
from ..protocol.errors import EINVAL, ENOENT, XenStoreError
from ..protocol.ops import Op
from ..protocol.packets import split_args
from ..protocol.paths import INTRODUCE_DOMAIN, RELEASE_DOMAIN, home_path, join
from ..protocol.perms import ACL, Perm
from .connection import Connection
from .cparse import atou, onearg
from .domains import HYPERVISOR_STATES, Domain
from .ops_nodes import remove
from .state import OK, State
from .store import Node, with_ignored
from .transactions import Transaction

log = get_logger(__name__)


def op_get_domain_path(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                       txn: Transaction | None) -> None:
    arg = onearg(payload)
    if arg is None:
        raise EINVAL("GET_DOMAIN_PATH takes one argument")
    conn.reply(Op.GET_DOMAIN_PATH, req_id, tx_id, home_path(atou(arg)).encode() + b"\0")


def op_is_domain_introduced(xs: State, conn: Connection, req_id: int, tx_id: int,
                            payload: bytes, txn: Transaction | None) -> None:
    arg = onearg(payload)
    if arg is None:
        raise EINVAL("IS_DOMAIN_INTRODUCED takes one argument")
    answer = b"T\0" if xs.domains.is_introduced(atou(arg)) else b"F\0"
    conn.reply(Op.IS_DOMAIN_INTRODUCED, req_id, tx_id, answer)


def _connected_domain(xs: State, domid: int) -> Domain:
    domain = xs.domains.introduced(domid)
    if domain is None:
        raise ENOENT(f"domain {domid} is not introduced")
    if domain.detached:
        raise EINVAL(f"domain {domid} has no connection")
    return domain


def _onearg_domain(xs: State, payload: bytes) -> Domain:
    arg = onearg(payload)
    if arg is None:
        raise EINVAL("takes one domid")
    domid = atou(arg)
    if domid == 0:
        raise EINVAL("not for domain 0")
    return _connected_domain(xs, domid)


def op_introduce(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                 txn: Transaction | None) -> None:
    args = split_args(payload)
    if len(args) < 3:
        raise EINVAL("INTRODUCE takes domid, gfn and port")
    domid = atou(args[0])
    port = atou(args[2])
    if port == 0:
        raise EINVAL("bad event channel port")
    introduce(xs, domid, port)
    conn.reply(Op.INTRODUCE, req_id, tx_id, OK)


def introduce(xs: State, domid: int, port: int = 1) -> Domain:
    """INTRODUCE: a new domain gets served and fires @introduceDomain; an introduced one
    has its connections reset (§8)."""
    domain = xs.touch_domain(domid)
    if domain.introduced:
        domain.port = port
        if domid != 0:
            for member in xs.members(domain):
                xs.reset_connection(member)
                member.discard_output()
        return domain
    try:
        xs.transport.open_domain(domid)
    except OSError as exc:
        log.error("cannot serve domain", domid=domid, error=str(exc))
        raise EINVAL(f"cannot serve domain {domid}: {exc}") from exc
    domain.introduced = True
    domain.shutdown = False
    domain.port = port
    log.info("domain introduced", domid=domid)
    xs.hub.fire_special(INTRODUCE_DOMAIN)
    return domain


def op_release(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
               txn: Transaction | None) -> None:
    domain = _onearg_domain(xs, payload)
    if domain.held_by:
        # 4.17: freeing a connection another one references only drops that reference.
        domain.held_by.pop()
    else:
        destroy_domain(xs, domain)
    conn.reply(Op.RELEASE, req_id, tx_id, OK)


def op_resume(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
              txn: Transaction | None) -> None:
    domain = _onearg_domain(xs, payload)
    domain.shutdown = False
    conn.reply(Op.RESUME, req_id, tx_id, OK)


def op_set_target(xs: State, conn: Connection, req_id: int, tx_id: int, payload: bytes,
                  txn: Transaction | None) -> None:
    args = split_args(payload)
    if len(args) < 2:
        raise EINVAL("SET_TARGET takes domid and target domid")
    domain = _connected_domain(xs, atou(args[0]))
    target = _connected_domain(xs, atou(args[1]))
    domain.target = target.domid
    target.held_by.append(domain.domid)
    conn.reply(Op.SET_TARGET, req_id, tx_id, OK)


def destroy_domain(xs: State, domain: Domain) -> None:
    """RELEASE or death: drop its connections, delete the nodes it owns (unless
    keep_orphans), take it out of the special ACLs, fire @releaseDomain."""
    domid = domain.domid
    domain.introduced = False
    for other in xs.domains.table.values():
        if domid in other.held_by:
            other.held_by = [d for d in other.held_by if d != domid]
    _close_connections(xs, domain)
    if xs.keep_orphans:
        _chown_orphans(xs, domid)
    else:
        _remove_owned(xs, domid)
    for name, acl in xs.special.items():
        xs.special[name] = _without_domid(acl, domid)
    xs.domains.remove(domid)
    xs.path_cache.forget(home_path(domid))
    xs.store.forget_acls(domid)
    log.info("domain destroyed", domid=domid)
    xs.hub.fire_special(RELEASE_DOMAIN)


def _close_connections(xs: State, domain: Domain) -> None:
    for member in xs.members(domain):
        xs.disconnect(member)
    xs.transport.close_domain(domain.domid)


def _remove_owned(xs: State, domid: int) -> None:
    """Pre-order walk from /; each subtree whose root the domain owns is removed (4.17's
    domain_tree_remove), until the domain owns nothing more. The walk follows the tree's
    links, with no lookup by path but for a child stored apart from its parent."""
    store = xs.store
    nodes = store.nodes
    pending: list[tuple[str, Node | None]] = [("/", nodes.root)]
    while pending and store.owned_by(domid) > 0:
        path, node = pending.pop()
        if node is None:
            node = nodes.get(path)
            if node is None:
                continue
        if node.owner == domid:
            try:
                remove(xs, xs.glob, path, node)
            except XenStoreError as exc:
                log.error("cannot delete orphaned node", path=path, error=str(exc))
            continue
        kids = node.kids
        if kids is not None:
            pending.extend((join(path, name), child)
                           for name, child in reversed(kids.names.items()))


def _chown_orphans(xs: State, domid: int) -> None:
    for node in xs.store.nodes.values():
        if node.owner == domid:
            node.perms = with_ignored(
                xs.store.share((Perm(node.perms[0].access, 0), *node.perms[1:])), node.ignored)
            xs.store.account(domid, -1)
            xs.store.account(0, 1)


def set_domain_state(xs: State, domid: int, state: str) -> None:
    """The simulated hypervisor changed a domain's state and raised the domain-exception
    VIRQ: see :func:`domain_exception`."""
    if state not in HYPERVISOR_STATES:
        raise EINVAL(f"unknown domain state {state!r}")
    if domid == 0:
        raise EINVAL("domain 0 cannot change state")
    xs.domains.states[domid] = state
    domain_exception(xs)


def ignore_domain(xs: State, domid: int) -> None:
    """A guest broke the protocol (a frame announcing more than 4096 bytes): 4.17 sets its
    ring's error field and ignores the domain for good (``ignore_connection``). Its
    connections are dropped with their watches, transactions and queued output, and no new
    one is accepted (:meth:`.state.State.connect`), not even after a re-INTRODUCE; the domain
    stays introduced with its nodes until RELEASE or death ends it."""
    domain = xs.domains.introduced(domid)
    if domain is None or domid == 0:
        return
    domain.broken = True
    for member in xs.members(domain):
        member.discard_output()
        xs.disconnect(member)
    log.warning("domain ignored after a protocol error", domid=domid)


def new_domain(xs: State, domid: int) -> None:
    """The simulated hypervisor created a domain ``domid`` (running; no VIRQ)."""
    if domid == 0:
        raise EINVAL("domain 0 always exists")
    xs.domains.states.pop(domid, None)


def domain_exception(xs: State) -> None:
    """4.17's ``domain_cleanup`` on VIRQ_DOM_EXC: every domain is checked again, whichever
    one changed. A record of a domain that is gone and was never introduced is dropped; an
    introduced domain newly found shut down or crashed is marked (``@releaseDomain`` fires
    once at the end; RESUME clears the mark, so a domain resumed while still shut down fires
    again at the next VIRQ); a dying or gone one is destroyed (which fires the event itself
    and starts the scan over, forgetting a pending notification), or detached while a
    SET_TARGET reference holds its connection (no events, nothing deleted). Domains are
    checked newest record first, as 4.17's list has them: that decides whether a pending
    notification survives a destruction."""
    notify = False
    scan = True
    while scan:
        scan = False
        for domain in reversed(list(xs.domains.table.values())):  # 4.17's list: newest first
            domid = domain.domid
            if domid == 0:
                continue
            state = xs.domains.states.get(domid, "running")
            if not domain.introduced:
                if state == "gone":
                    xs.domains.remove(domid)
                continue
            if state in ("shutdown", "crashed") and not domain.shutdown:
                domain.shutdown = True
                notify = True
            if state not in ("dying", "gone") or domain.detached:
                continue
            if domain.held_by:
                domain.detached = True
                _close_connections(xs, domain)
            else:
                destroy_domain(xs, domain)
            notify = False
            scan = True
            break
    if notify:
        xs.hub.fire_special(RELEASE_DOMAIN)


def _without_domid(acl: ACL, domid: int) -> ACL:
    """4.17's remove_domid_from_perm: the owner becomes dom0, other entries go."""
    owner = acl[0]
    if owner.domid & 0xFFFFFFFF == domid:
        owner = Perm(owner.access, 0)
    return (owner, *(p for p in acl[1:] if p.domid & 0xFFFFFFFF != domid))
