"""Get Xen 4.17's C xenstored from Debian packages and build the hypervisor stub for it.

Nothing is installed system-wide: ``apt-get download`` fetches the ``.deb`` files into a
temporary folder, ``dpkg -x`` unpacks them into a cache folder, and gcc compiles
``stub.c`` next to them. Several processes may call :func:`ensure_install` at once: a lock
file serialises the work, and the result is only published once complete.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ...logs import get_logger

log = get_logger(__name__)

PACKAGES: tuple[str, ...] = (
    "xen-utils-4.17",
    "xen-utils-common",
    "xenstore-utils",
    "libxenstore4",
    "libxenmisc4.17",
    "libxenevtchn1",
    "libxengnttab1",
    "libxencall1",
    "libxenforeignmemory1",
    "libxentoollog1",
    "libxentoolcore1",
    "libxendevicemodel1",
    "libxenhypfs1",
    "libyajl2",
    "libxen-dev",
)
"""The Debian bookworm packages that make up the daemon, its libraries, clients and headers."""

STUB_SOURCE = Path(__file__).with_name("stub.c")
CFLAGS: tuple[str, ...] = ("-shared", "-fPIC", "-O2", "-Wall", "-Wextra")

_ROOT = "root"
_XENSTORED = "usr/lib/xen-4.17/bin/xenstored"
_COMPLETE = ".complete"
_LOCK = ".lock"


class ReferenceUnavailable(RuntimeError):
    """The reference daemon cannot be had on this machine; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ReferenceInstall:
    """Where the unpacked packages and the compiled stub are."""

    root: Path
    """The folder every package was unpacked into (``dpkg -x``)."""
    xenstored: Path
    lib_dirs: tuple[Path, ...]
    """For ``LD_LIBRARY_PATH``."""
    clients_dir: Path
    """``usr/bin``: ``xenstore-read``, ``xenstore-write``, ``xenstore-ls``, ..."""
    python_dir: Path
    """Holds ``xen.lowlevel.xs`` (libxenstore's binding, for CPython 3.11)."""
    include_dir: Path
    stub: Path
    """The compiled LD_PRELOAD library."""

    @property
    def ld_library_path(self) -> str:
        return os.pathsep.join(str(p) for p in self.lib_dirs)

    def client_env(self, socket_path: str | os.PathLike[str]) -> dict[str, str]:
        """Environment for the ``xenstore-*`` tools or ``xen.lowlevel.xs`` on that socket."""
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = self.ld_library_path
        env["XENSTORED_PATH"] = str(socket_path)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(self.python_dir), env.get("PYTHONPATH", "")) if p)
        return env


def default_cache_dir() -> Path:
    env = os.environ.get("XSACTOR_REFERENCE_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "xsactor" / "xen-4.17"


def ensure_install(cache_dir: str | os.PathLike[str] | None = None, *,
                   fetch: bool = True) -> ReferenceInstall:
    """The reference install in ``cache_dir``, fetching and building what is missing.

    With ``fetch=False`` nothing is downloaded: a cache without the packages raises
    :class:`ReferenceUnavailable` (the stub is still compiled when needed).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReferenceUnavailable(f"cannot create the cache folder {cache}: {exc}") from exc
    with _locked(cache / _LOCK):
        if not _is_complete(cache):
            if not fetch:
                raise ReferenceUnavailable(
                    f"the Xen 4.17 packages are not in {cache}; run "
                    "`python -m xsactor.testing.reference fetch`")
            _fetch_packages(cache)
        stub = _ensure_stub(cache)
    return _install(cache, stub)


def _install(cache: Path, stub: Path) -> ReferenceInstall:
    root = cache / _ROOT
    return ReferenceInstall(
        root=root,
        xenstored=root / _XENSTORED,
        lib_dirs=(root / "usr/lib/x86_64-linux-gnu", root / "usr/lib/xen-4.17/lib"),
        clients_dir=root / "usr/bin",
        python_dir=root / "usr/lib/xen-4.17/lib/python",
        include_dir=root / "usr/include",
        stub=stub,
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _packages_key() -> str:
    return " ".join(PACKAGES) + "\n"


def _is_complete(cache: Path) -> bool:
    marker = cache / _COMPLETE
    try:
        if marker.read_text() != _packages_key():
            return False
    except OSError:
        return False
    return (cache / _ROOT / _XENSTORED).is_file()


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _fetch_packages(cache: Path) -> None:
    for tool in ("apt-get", "dpkg"):
        if shutil.which(tool) is None:
            raise ReferenceUnavailable(f"{tool} is not available (a Debian machine is needed)")
    with tempfile.TemporaryDirectory(dir=cache, prefix="fetch-") as tmp:
        work = Path(tmp)
        debs = work / "debs"
        debs.mkdir()
        log.info("reference.download", packages=len(PACKAGES), cache=str(cache))
        result = _run(["apt-get", "download", *PACKAGES], debs)
        if result.returncode != 0:
            # A fresh machine has empty package lists: update once and retry.
            log.info("reference.apt_update", reason=_tail(result.stderr, 2))
            update = _run(["apt-get", "update"], debs)
            if update.returncode != 0:
                raise ReferenceUnavailable(
                    f"apt-get update failed: {_tail(update.stderr or update.stdout)}")
            result = _run(["apt-get", "download", *PACKAGES], debs)
        if result.returncode != 0:
            raise ReferenceUnavailable(
                f"apt-get download failed: {_tail(result.stderr or result.stdout)}")
        root = work / _ROOT
        root.mkdir()
        for deb in sorted(debs.glob("*.deb")):
            unpack = _run(["dpkg", "-x", str(deb), str(root)], work)
            if unpack.returncode != 0:
                raise ReferenceUnavailable(f"dpkg -x {deb.name} failed: {_tail(unpack.stderr)}")
        if not (root / _XENSTORED).is_file():
            raise ReferenceUnavailable(f"the packages hold no {_XENSTORED}")
        final = cache / _ROOT
        if final.exists():
            shutil.rmtree(final)
        os.replace(root, final)
    (cache / _COMPLETE).write_text(_packages_key())
    log.info("reference.unpacked", root=str(cache / _ROOT))


def stub_key() -> str:
    """A hash of the stub's source and compiler flags: the name of its build."""
    digest = hashlib.sha256(STUB_SOURCE.read_bytes())
    digest.update(" ".join(CFLAGS).encode())
    return digest.hexdigest()[:16]


def _ensure_stub(cache: Path) -> Path:
    target = cache / f"stub-{stub_key()}.so"
    if target.is_file():
        return target
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise ReferenceUnavailable("no C compiler (gcc) to build the hypervisor stub")
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    result = _run([gcc, *CFLAGS, "-o", str(tmp), str(STUB_SOURCE)], cache)
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise ReferenceUnavailable(f"compiling stub.c failed: {_tail(result.stderr)}")
    os.replace(tmp, target)
    for old in cache.glob("stub-*.so"):
        if old != target:
            old.unlink(missing_ok=True)
    log.info("reference.stub_built", stub=str(target))
    return target
