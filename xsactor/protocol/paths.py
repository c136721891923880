"""XenStore path rules: characters, lengths, relative paths and ``@`` special paths.

These follow 4.17's ``canonicalize`` and ``is_valid_nodename``; the client uses them to
refuse a bad path before sending it, the daemon to answer EINVAL.
"""

from __future__ import annotations

import re

from .errors import EINVAL
from .ops import REL_PATH_MAX

SPECIAL_PREFIX = "@"
INTRODUCE_DOMAIN = "@introduceDomain"
RELEASE_DOMAIN = "@releaseDomain"
SPECIAL_NODES = (INTRODUCE_DOMAIN, RELEASE_DOMAIN)

_VALID_CHARS = re.compile(r"[A-Za-z0-9\-/_@]*\Z")
_DOMAIN_PREFIX = re.compile(r"/local/domain/(\d{1,5})/")


def home_path(domid: int) -> str:
    """A domain's home: ``/local/domain/<domid>`` (where its relative paths point)."""
    return f"/local/domain/{domid}"


def canonicalize(path: str, home: str) -> str:
    """Make ``path`` absolute: relative paths go under ``home`` (4.17's ``canonicalize``)."""
    if path.startswith(("/", SPECIAL_PREFIX)):
        return path
    return f"{home}/{path}"


def path_length_budget(path: str, path_max: int = REL_PATH_MAX) -> int:
    """How long ``path`` may be: ``path_max`` plus a ``/local/domain/<n>/`` prefix, if any."""
    match = _DOMAIN_PREFIX.match(path)
    return path_max + (match.end() if match else 0)


def invalid_reason(path: str, *, allow_special: bool = False,
                   path_max: int = REL_PATH_MAX) -> str | None:
    """Why an absolute (canonical) path is refused, or None when it is valid."""
    if not path.startswith("/") and not (allow_special and path.startswith(SPECIAL_PREFIX)):
        return "must start with '/'" + (" or '@'" if allow_special else "")
    if path.endswith("/") and path != "/":
        return "must not end with '/'"
    if "//" in path:
        return "must not contain '//'"
    if len(path) > path_length_budget(path, path_max):
        return f"longer than {path_max} characters"
    if not _VALID_CHARS.match(path):
        return "may only contain A-Z a-z 0-9 - / _ @"
    return None


def is_valid(path: str, *, allow_special: bool = False, path_max: int = REL_PATH_MAX) -> bool:
    """Whether an absolute (canonical) path passes 4.17's checks."""
    return invalid_reason(path, allow_special=allow_special, path_max=path_max) is None


def validate(path: str, home: str, *, allow_special: bool = False,
             path_max: int = REL_PATH_MAX) -> str:
    """The canonical form of ``path``; raises :class:`EINVAL` naming the problem."""
    canonical = canonicalize(path, home)
    reason = invalid_reason(canonical, allow_special=allow_special, path_max=path_max)
    if reason is not None:
        raise EINVAL(f"invalid path ({reason})", path=path)
    return canonical


def is_special(path: str) -> bool:
    return path.startswith(SPECIAL_PREFIX)


def parent(path: str) -> str:
    """The parent of an absolute path (``/`` is its own parent)."""
    cut = path.rfind("/")
    return "/" if cut <= 0 else path[:cut]


def basename(path: str) -> str:
    return path[path.rfind("/") + 1:]


def join(parent_path: str, name: str) -> str:
    return f"/{name}" if parent_path == "/" else f"{parent_path}/{name}"


def ancestors(path: str) -> list[str]:
    """Proper ancestors of an absolute path, nearest first, ending with ``/``."""
    out = []
    while path != "/":
        path = parent(path)
        out.append(path)
    return out


def is_within(path: str, top: str) -> bool:
    """Whether ``path`` is ``top`` or below it (how a watch on ``top`` matches)."""
    if top == "/" or path == top:
        return True
    return path.startswith(top) and path[len(top)] == "/"


def relative_to(path: str, home: str) -> str:
    """``path`` as a watch registered relative to ``home`` reports it."""
    prefix = home + "/"
    return path[len(prefix):] if path.startswith(prefix) else path
