"""The ``xenstore-*`` tools of xenstore-utils 4.17, byte for byte, on a :class:`Client`.

``xsactor read | write | ls | list | rm | exists | chmod | watch`` behave as Debian's
``xenstore-read`` ... ``xenstore-watch`` (``tools/xs-clients/xenstore_client.c``): the same
options (GNU ``getopt_long``: permuted, clustered, ``--prefix`` abbreviations, unknown options
warned about and ignored), the same output on stdout, the same exit codes, the same transactions
(several keys are read and written in one, retried on EAGAIN), the same escapes
(:func:`sanitise`, :func:`unsanitise`) and ``xenstore-ls``'s 80-column layout.

On stderr the messages are libxenstore's, followed by the reason where the C tools leave it out
("couldn't read path /x: No such file or directory"). Options the C tools lack: ``--path PATH``
(the socket or device; ``-s`` is the C tools' flag "the socket only") and ``--json``.
"""

from __future__ import annotations

import errno as _errno
import fcntl
import json
import os
import struct
import sys
import termios
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from .protocol.cnum import int32, strtol
from .protocol.errors import EAGAIN, ConnectionLost, XenStoreError
from .protocol.perms import Access, Perm

if TYPE_CHECKING:
    from .bus.client import Client

__all__ = ["TOOLS", "getopt_long", "open_client", "run_tool", "sanitise", "unsanitise"]

# -- escapes (xs_lib.c) -----------------------------------------------------------------------


def sanitise(value: bytes) -> bytes:
    """``sanitise_value``: printable ASCII as is; ``\\t \\n \\r \\\\``; below 8 octal
    (``\\001``), the rest hex (``\\x7f``)."""
    out = bytearray()
    for c in value:
        if 32 <= c <= 126 and c != 92:
            out.append(c)
        elif c in _NAMED:
            out += _NAMED[c]
        else:
            out += b"\\%03o" % c if c < 8 else b"\\x%02x" % c
    return bytes(out)


_NAMED = {9: b"\\t", 10: b"\\n", 13: b"\\r", 92: b"\\\\"}
_UNNAMED = {ord("t"): 9, ord("n"): 10, ord("r"): 13, ord("\\"): 92}
_SPACE = b" \t\n\v\f\r"


def _scan(text: bytes, i: int, base: int, width: int) -> tuple[int, int] | None:
    """glibc's ``sscanf(text + i, "%<width>x|o%n")``: (value, bytes consumed) or None."""
    j = i
    while j < len(text) and text[j] in _SPACE:
        j += 1
    digits = b""
    if width and j < len(text) and text[j] in b"+-":
        digits, j, width = text[j:j + 1], j + 1, width - 1
    if width and j < len(text) and text[j] == ord("0"):
        digits, j, width = digits + b"0", j + 1, width - 1
        if base == 16 and width and j < len(text) and text[j] in b"xX":
            j, width = j + 1, width - 1
    allowed = b"0123456789abcdefABCDEF" if base == 16 else b"01234567"
    while width and j < len(text) and text[j] in allowed:
        digits, j, width = digits + text[j:j + 1], j + 1, width - 1
    if digits.lstrip(b"+-") == b"":
        return None
    return int(digits, base), j - i


def unsanitise(spec: bytes) -> bytes:
    """``unsanitise_value``, what ``xenstore-write`` does to a value unless ``-R``."""
    out = bytearray()
    i, n = 0, len(spec)
    while i < n:
        c = spec[i]
        i += 1
        if c == 92:  # backslash
            if i == n:  # a NUL follows in C: it is written, then ends the string
                out.append(0)
                break
            c = spec[i]
            i += 1
            if c in _UNNAMED:
                c = _UNNAMED[c]
            elif c == ord("x"):
                scanned = _scan(spec, i, 16, 2)
                if scanned is not None:
                    c, used = scanned
                    i += used
            elif ord("0") <= c <= ord("7"):
                scanned = _scan(spec, i - 1, 8, 3)
                assert scanned is not None
                c, used = scanned
                i += used - 1
        out.append(c & 0xFF)
    return bytes(out)


# -- options (GNU getopt_long) ----------------------------------------------------------------

@dataclass
class Parsed:
    options: list[tuple[str, str | None]] = field(default_factory=list)
    """In order: ``(name, value)``, or ``("?", warning)`` where getopt complained."""
    operands: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.options.append(("?", message))


def _long_match(name: str, table: dict[str, bool]) -> tuple[str | None, str | None]:
    """(option, None) or (None, warning) for ``--name`` in ``table`` (exact or a unique
    prefix, as getopt_long resolves it)."""
    if name in table:
        return name, None
    found = [option for option in table if option.startswith(name)]
    if len(found) == 1:
        return found[0], None
    if found:
        return None, (f"option '--{name}' is ambiguous; possibilities: "
                      + " ".join(f"'--{option}'" for option in found))
    return None, f"unrecognized option '--{name}'"


def getopt_long(args: Sequence[str], shortopts: str, longopts: dict[str, bool],
                extra_longopts: dict[str, bool] | None = None) -> Parsed:
    """GNU ``getopt_long`` with permutation: options anywhere until ``--``; bad options are
    reported as ``("?", warning)`` and skipped (xenstore_client.c ignores getopt's ``'?'``).

    ``longopts`` maps a long name to whether it takes an argument; ``extra_longopts`` are
    resolved only when ``longopts`` has no match (so abbreviations stay the C tools')."""
    takes = {ch: shortopts[i + 1:i + 2] == ":" for i, ch in enumerate(shortopts) if ch != ":"}
    extra = extra_longopts or {}
    out = Parsed()
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out.operands += args[i:]
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            option, warning = _long_match(name, longopts)
            if option is None and extra:
                option, extra_warning = _long_match(name, extra)
                warning = warning if option is None and "ambiguous" in (warning or "") \
                    else extra_warning
            if option is None:
                out.warn(warning or f"unrecognized option '--{name}'")
                continue
            has_arg = {**extra, **longopts}[option]
            if has_arg and not eq:
                if i < len(args):
                    value, i = args[i], i + 1
                else:
                    out.warn(f"option '--{option}' requires an argument")
                    continue
            elif eq and not has_arg:
                out.warn(f"option '--{option}' doesn't allow an argument")
                continue
            out.options.append((option, value if has_arg else None))
            continue
        if not arg.startswith("-") or arg == "-":
            out.operands.append(arg)
            continue
        j = 1
        while j < len(arg):
            ch = arg[j]
            j += 1
            if ch not in takes:
                out.warn(f"invalid option -- '{ch}'")
                continue
            if takes[ch]:
                if j < len(arg):
                    out.options.append((ch, arg[j:]))
                elif i < len(args):
                    out.options.append((ch, args[i]))
                    i += 1
                else:
                    out.warn(f"option requires an argument -- '{ch}'")
                break
            out.options.append((ch, None))
    return out


SHORTOPTS = "hfspturn:R"
# Debian's 4.17 build has no --socket (only -s).
LONGOPTS = {"help": False, "flat": False, "prefix": False, "tidy": False, "upto": False,
            "recurse": False, "number": True, "raw": False}
LONG_TO_SHORT = {"help": "h", "flat": "f", "prefix": "p", "tidy": "t", "upto": "u",
                 "recurse": "r", "number": "n", "raw": "R"}
EXTRA_LONGOPTS = {"path": True, "json": False}

USAGE = {
    "read": "[-h] [-p] [-s] [-R] key [...]",
    "write": "[-h] [-s] [-R] key value [...]",
    "exists": "[-h] [-p] [-s] key [...]",
    "list": "[-h] [-p] [-s] key [...]",
    "rm": "[-h] [-s] [-t] key [...]",
    "ls": "[-h] [-f] [-p] [-s] [path]",
    "chmod": "[-h] [-u] [-r] [-s] key <mode [modes...]>",
    "watch": "[-h] [-n NR] key",
}
ALLOWED = {"f": {"ls"}, "p": {"read", "list", "ls"}, "t": {"rm"}, "u": {"chmod"},
           "r": {"chmod"}, "n": {"watch"}, "R": {"read", "write"}}
JSON_TOOLS = {"read", "list", "ls", "exists", "watch"}
TOOLS = tuple(USAGE)
"""The verbs of xenstore-utils, in the order ``xenstore_client.c`` declares them."""


class Exit(Exception):
    """``exit(code)`` from deep inside a tool (C's ``err``/``errx``)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def reason(exc: BaseException) -> str:
    """What C's ``err()`` appends: the errno's text, or why the connection went."""
    if isinstance(exc, XenStoreError):
        return os.strerror(exc.errno)
    if isinstance(exc, ConnectionLost):
        return f"connection lost ({exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def open_failure(exc: OSError) -> str:
    """The message for a failed :func:`open_client`: ``xs_open: [endpoint: ]reason``."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"xs_open: {where}{reason(exc)}"


# -- connecting ----------------------------------------------------------------------------

def open_client(path: str | None, socket_only: bool) -> Client:
    """Connect as ``xs_open`` does (``XS_OPEN_SOCKETONLY`` with ``-s``); ``path`` stands for
    ``$XENSTORED_PATH``. Raises OSError naming the endpoint that really failed."""
    from .bus.client import Client
    from .bus.transports import choose_endpoints, open_endpoint

    env = dict(os.environ)
    if path is not None:
        env["XENSTORED_PATH"] = path
    endpoints = choose_endpoints(env)
    if socket_only:
        endpoints = endpoints[:1]
    transport = open_endpoint(endpoints)
    return Client(transport=transport, name="cli")


# -- the tools -----------------------------------------------------------------------------

@dataclass
class Options:
    prefix: bool = False
    tidy: bool = False
    upto: bool = False
    recurse: bool = False
    raw: bool = False
    flat: bool = False
    socket: bool = False
    number: int = -1
    path: str | None = None
    json: bool = False


class Tool:
    """One run of a tool: its options, the C tool's output buffer, stdout and stderr."""

    def __init__(self, verb: str, out: IO[bytes], err: IO[str]) -> None:
        self.verb = verb
        self.out = out
        self.err = err
        self.buffer = bytearray()  # xenstore_client.c's output(): printed after the end
        self.records: list[Any] = []  # --json

    def warn(self, message: str) -> None:
        self.err.write(f"xsactor {self.verb}: {message}\n")
        self.err.flush()

    def usage(self) -> Exit:
        self.warn(f"Usage: xsactor {self.verb} {USAGE[self.verb]}")
        return Exit(1)

    def fail(self, message: str) -> Exit:
        self.warn(message)
        return Exit(1)


def parse(tool: Tool, argv: Sequence[str]) -> tuple[Options, list[str]]:
    parsed = getopt_long(argv, SHORTOPTS, LONGOPTS, EXTRA_LONGOPTS)
    opts = Options()
    for name, value in parsed.options:
        short = LONG_TO_SHORT.get(name, name)
        if short == "?":
            tool.warn(value or "")
            continue
        if short == "h" or (short in ALLOWED and tool.verb not in ALLOWED[short]):
            raise tool.usage()
        if short == "s":
            opts.socket = True
        elif short == "n":
            opts.number = int32(strtol(value or "")[0])  # atoi
        elif name == "path":
            opts.path = value
        elif name == "json":
            if tool.verb not in JSON_TOOLS:
                raise tool.usage()
            opts.json = True
        else:
            setattr(opts, {"p": "prefix", "t": "tidy", "u": "upto", "r": "recurse",
                           "R": "raw", "f": "flat"}[short], True)
    operands = parsed.operands
    if tool.verb == "write" and len(operands) % 2:
        raise tool.usage()
    if tool.verb != "ls" and not operands:
        raise tool.usage()
    return opts, operands


def _transactional(verb: str, operands: list[str]) -> bool:
    if verb == "read":
        return len(operands) > 1
    if verb == "write":
        return len(operands) > 2
    return verb not in ("ls", "watch")


def run_tool(verb: str, argv: Sequence[str], *, out: IO[bytes] | None = None,
             err: IO[str] | None = None,
             connect: Callable[[str | None, bool], Client] = open_client) -> int:
    """Run ``xenstore-<verb> argv...``; returns the exit status."""
    tool = Tool(verb, out or sys.stdout.buffer, err or sys.stderr)
    try:
        opts, operands = parse(tool, argv)
        try:
            client = connect(opts.path, opts.socket)
        except OSError as exc:
            raise tool.fail(open_failure(exc)) from None
        with client:
            return _run(tool, client, opts, operands)
    except Exit as exit_:
        return exit_.code
    finally:
        tool.out.flush()


def _run(tool: Tool, client: Client, opts: Options, operands: list[str]) -> int:
    transaction = _transactional(tool.verb, operands)
    while True:
        tid = None
        if transaction:
            try:
                tid = client.transaction()
            except (XenStoreError, ConnectionLost) as exc:
                raise tool.fail(f"couldn't start transaction: {reason(exc)}") from None
        ret = perform(tool, client, opts, operands, tid)
        if tid is not None:
            try:
                if ret == 0:
                    client.commit(tid)
                else:
                    client.rollback(tid)
            except EAGAIN:
                if ret == 0:
                    tool.buffer.clear()
                    tool.records.clear()
                    continue
                raise tool.fail("couldn't end transaction") from None
            except (XenStoreError, ConnectionLost) as exc:
                raise tool.fail(f"couldn't end transaction: {reason(exc)}") from None
        break
    if opts.json and tool.verb != "watch":  # watch printed a JSON line per event
        tool.out.write(json.dumps(_json_result(tool, operands)).encode() + b"\n")
    else:
        tool.out.write(tool.buffer)
    return ret


def _json_result(tool: Tool, operands: list[str]) -> Any:
    if tool.verb in ("read", "exists"):
        return dict(tool.records)
    if tool.verb == "list":
        return {key: names for key, names in tool.records}
    return tool.records


def _text(value: bytes) -> str:
    return value.decode("utf-8", "backslashreplace")


def perform(tool: Tool, client: Client, opts: Options, operands: list[str],
            tid: Any) -> int:
    """``perform()`` of xenstore_client.c: 0, or 1 after the first failing key."""
    try:
        return PERFORM[tool.verb](tool, client, opts, operands, tid)
    except ConnectionLost as exc:
        raise tool.fail(reason(exc)) from None


def _read(tool: Tool, client: Client, opts: Options, keys: list[str], tid: Any) -> int:
    for key in keys:
        try:
            value = client.read(key, tid)
        except XenStoreError as exc:
            tool.warn(f"couldn't read path {key}: {reason(exc)}")
            return 1
        tool.records.append((key, _text(value)))
        if opts.prefix:
            tool.buffer += os.fsencode(key) + b": "
        tool.buffer += value if opts.raw else sanitise(value) + b"\n"
    return 0


def _write(tool: Tool, client: Client, opts: Options, operands: list[str], tid: Any) -> int:
    for key, spec in zip(operands[::2], operands[1::2], strict=True):
        value = os.fsencode(spec)
        if not opts.raw:
            value = unsanitise(value)
        try:
            client.write(key, value, tid)
        except XenStoreError as exc:
            tool.warn(f"could not write path {key}: {reason(exc)}")
            return 1
    return 0


def _rm(tool: Tool, client: Client, opts: Options, keys: list[str], tid: Any) -> int:
    for key in keys:
        path = key
        while True:
            try:
                client.delete(path, tid)
            except XenStoreError as exc:
                tool.warn(f"could not remove path {path}: {reason(exc)}")
                return 1
            if not opts.tidy or "/" not in path:
                break
            # -t: remove the parent too while it is empty and has no value
            path = path[:path.rindex("/")]
            try:
                if client.read(path, tid) != b"" or client.list(path, tid):
                    break
            except XenStoreError:
                break
    return 0


def _exists(tool: Tool, client: Client, opts: Options, keys: list[str], tid: Any) -> int:
    for key in keys:
        try:
            client.read(key, tid)
        except XenStoreError:
            tool.records.append((key, False))
            if opts.json:
                continue
            return 1
        tool.records.append((key, True))
    return 1 if any(not found for _key, found in tool.records) else 0


def _list(tool: Tool, client: Client, opts: Options, keys: list[str], tid: Any) -> int:
    for key in keys:
        try:
            names = client.list(key, tid)
        except XenStoreError as exc:
            tool.warn(f"could not list path {key}: {reason(exc)}")
            return 1
        tool.records.append((key, names))
        for name in names:
            if opts.prefix:
                tool.buffer += os.fsencode(key) + b"/"
            tool.buffer += name.encode() + b"\n"
    return 0


def _perm_letter(spec: str) -> Perm:
    access = {"n": Access.NONE, "r": Access.READ, "w": Access.WRITE, "b": Access.BOTH}
    return Perm(access[spec[0]], int32(strtol(spec[1:])[0]))  # atoi(spec + 1)


def _chmod(tool: Tool, client: Client, opts: Options, operands: list[str], tid: Any) -> int:
    path, specs = operands[0], operands[1:]
    perms: list[Perm] = []
    for spec in specs:
        if spec[:1] not in ("n", "r", "w", "b"):
            letter = spec[:1] or "\0"
            raise tool.fail(f"Invalid permission specification: '{letter}'")
        perms.append(_perm_letter(spec))
    _do_chmod(tool, client, path, perms, opts.upto, opts.recurse, tid)
    return 0


MAX_PATH_LEN = 256


def _do_chmod(tool: Tool, client: Client, path: str, perms: list[Perm], upto: bool,
              recurse: bool, tid: Any) -> None:
    if not path:
        return
    try:
        client.set_perms(path, perms, tid)  # no perms: EINVAL, as the daemon answers
    except XenStoreError as exc:
        raise tool.fail(f"Error occurred setting permissions on '{path}': "
                        f"{reason(exc)}") from None
    if upto:
        if "/" not in path:
            raise tool.fail(f"Unable to locate path separator '/' in '{path}'")
        _do_chmod(tool, client, path[:path.rindex("/")], perms, True, False, tid)
    if recurse:
        try:
            names = client.list(path, tid)
        except XenStoreError:
            return
        for name in names:
            child = f"{path}/{name}".encode()[:MAX_PATH_LEN - 1].decode("ascii", "replace")
            _do_chmod(tool, client, child, perms, False, True, tid)


def _watch(tool: Tool, client: Client, opts: Options, keys: list[str], tid: Any) -> int:
    from .actors.mailbox import Mailbox

    box = Mailbox()  # this run's events only
    for key in keys:
        try:
            client.watch(key, key, mailbox=box)
        except XenStoreError as exc:
            raise tool.fail(f"Unable to add watch on {key}: {reason(exc)}") from None
    count = 0
    while opts.number == -1 or count < opts.number:
        path, token = client.next_event(mailbox=box)
        event = {"path": path, "token": token}
        line = json.dumps(event).encode() if opts.json else path.encode()
        tool.out.write(line + b"\n")
        tool.out.flush()
        count += 1
    return 0


# -- xenstore-ls ------------------------------------------------------------------------------

TAG_LEN = len(' = "..."')
STRING_MAX = 3072 + 1024  # XENSTORE_ABS_PATH_MAX + 1024


def _terminal_columns(out: IO[bytes]) -> int | None:
    """``ioctl(STDOUT_FILENO, TIOCGWINSZ)``'s column count, None when not a terminal."""
    try:
        packed = fcntl.ioctl(out.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
    except (OSError, ValueError, AttributeError):
        return None
    return int(struct.unpack("HHHH", packed)[1])


def _ls(tool: Tool, client: Client, opts: Options, paths: list[str], tid: Any) -> int:
    max_width, desired_width = 80, 60
    if opts.flat:
        max_width, desired_width = (2**31 - 1) // 2, 0
    columns = _terminal_columns(tool.out)
    if columns is not None:
        max_width = columns - 2
    layout = (max_width, desired_width)
    for path in paths or ["/"]:
        _do_ls(tool, client, path, 0, opts, layout)
    return 0


def _precision(text: bytes, precision: int) -> bytes:
    """printf's ``%.*s``: a negative precision prints everything."""
    return text if precision < 0 else text[:precision]


def _do_ls(tool: Tool, client: Client, path: str, depth: int, opts: Options,
           layout: tuple[int, int]) -> None:
    max_width, desired_width = layout
    out = tool.out
    try:
        names = client.list(path)
    except XenStoreError as exc:
        if depth and exc.errno == _errno.ENOENT:
            return  # gone while recursing
        out.flush()
        raise tool.fail(f"xs_directory ({path}): {reason(exc)}") from None
    for name in names:
        child = f"{path}{'' if path.endswith('/') else '/'}{name}"
        line = bytearray()
        width = 0
        if opts.flat:
            line += child.encode()
        else:
            line += b" " * depth
            width = depth
            shown = _precision(name.encode(), max_width - TAG_LEN - width)
            line += shown
            width += len(shown)
        value: bytes | None = None
        if len(child.encode()) < STRING_MAX:
            try:
                value = client.read(child)
            except XenStoreError:
                value = None
        record: dict[str, Any] = {"path": child}
        if value is None:
            line += b":\n"
        else:
            record["value"] = _text(value)
            shown = sanitise(value)
            if max_width >= 0 and max_width < width + len(value) + TAG_LEN:
                line += b' = "' + _precision(shown, max_width - TAG_LEN - width) + b'\\..."'
            else:
                part = b' = "' + shown + b'"'
                line += part
                width += len(part)
                if opts.prefix:
                    line += b" "
                    width += 1
                    while width < min(desired_width, max_width):
                        line += b"." if width & 1 else b" "
                        width += 1
        if opts.prefix:
            try:
                acl = [str(Perm.parse(p)) for p in client.get_perms(child)]
            except XenStoreError as exc:
                out.write(line)
                out.flush()
                line = bytearray()
                tool.warn(f"\ncould not access permissions for {name}: {reason(exc)}")
            else:
                record["perms"] = acl
                line += b"  (" + ",".join(acl).encode() + b")"
        if opts.json:
            tool.records.append(record)
        else:
            out.write(line + b"\n")
        _do_ls(tool, client, child, depth + 1, opts, layout)


PERFORM: dict[str, Callable[[Tool, Client, Options, list[str], Any], int]] = {
    "read": _read, "write": _write, "exists": _exists, "list": _list, "rm": _rm,
    "ls": _ls, "chmod": _chmod, "watch": _watch,
}
