"""Every OTP scenario ends with no process and no stray greenlet left."""

from xsactor.testing.processes import no_leftover_processes

__all__ = ["no_leftover_processes"]
