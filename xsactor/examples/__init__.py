"""Example agents, each a supervision tree (see ``examples/README.md``).

=============  ==========================================================================
``shutdown``   ``control/shutdown`` as Linux's ``drivers/xen/manage.c``
``balloon``    follows ``memory/target`` (KiB), level-triggered
``strict``     a subscriber that crashes on a bad value: backoff, then give-up
``metrics``    OS and memory facts under ``data/``, as xe-guest-utilities
``vif``        a split driver's XenbusState handshake: backend (dom0) and frontend (guest)
``domains``    dom0's table of live domains from ``@introduceDomain``/``@releaseDomain``
``guest``      all the guest-side agents under one tree (what ``xsactor demo`` runs)
=============  ==========================================================================

Each runs with one command: ``python -m xsactor.examples.<name>`` (an embedded daemon of its
own), or ``xsactor run xsactor.examples.<name>:agent --socket PATH``.
"""
