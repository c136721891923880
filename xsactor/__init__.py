"""xsactor: XenStore for Python guest agents, in the actor style of Erlang."""

__version__ = "0.1.0"
