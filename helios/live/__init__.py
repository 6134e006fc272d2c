"""Live subscribers' shared parts: what to listen to (``filter``), the second
copy of each event (``dedup``), and the connection to every buck's live feed
(``feed``). ``helios subscribe``, ``helios check`` and ``helios graphite``
compose them; the format on the wire is ``helios.wire.live``."""
