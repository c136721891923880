"""Ready-made agents, each a supervision tree (``tree()`` returns its root child spec):

- :mod:`.shutdown`: ``control/shutdown`` as Linux's ``drivers/xen/manage.c`` handles it;
- :mod:`.balloon`: follows ``memory/target``, level-triggered;
- :mod:`.vif`: a split driver's handshake, backend (dom0) and frontend (guest).

``xsactor run xsactor.agents.shutdown:tree`` runs one; ``examples/`` shows them with the others.
"""
