"""Prove the recent index holds what the bucks hold: ``helios audit --index``.

``helios audit`` proves that every byte a tailer read is held by a buck;
this proves the next step, buck -> porter -> index. Per environment:

- **missing**: every event of every window the porter says it loaded (its
  state, ``STATE_DIR/porter.db``: the window is marked indexed, from the
  bucks in ``index_sources``) that those bucks' copies hold must be in the
  index, once. Only searchable events count (``helios.index.base.searchable``:
  the tailers' inventory records are left out of the index by design), and
  only events the index still keeps (times on or after the first day of
  ``recent_days``: older ones were left out at load or dropped by retention);
  events the porter sets aside (``codec.decode_rows``'s storage checks: its
  quarantine) are not expected either.
- **extra**: every event of the index must be held by a buck, in any window
  (loaded or not: the porter also loads open windows early). This is checked
  for the events received after the oldest window the bucks still hold (and
  after every window the porter pruned, plus ``SKEW_S`` for clocks):
  before that, the bucks no longer hold what the index was loaded from.
- **duplicates**: an id held twice in the index.
- **changed** (``content``, ``helios audit --index --content``): an event
  looked for and held once by the index, whose content but the time (a
  digest: the index's ``content_digests`` of the buck's row, its
  ``contents`` of what it holds) differs from the bucks' copies (all
  agreeing). A backend without them is said, never passed.

What cannot be checked is said, never counted as a pass: windows not yet
loaded (open, not yet due, or a buck's copy the porter has not fetched
yet), windows loaded and since pruned from every buck, events too old for
the index, index events received before the bucks' oldest window, and
bucks that did not answer (then the extras are not checked at all: the
events only that buck holds would look extra). An event held both by a
loaded window and by one not yet loaded (a spool re-send the porter's
ledger gave to the later window, helios.porter.seen) is checked once that
one is loaded too.

It may run while the mesh works: windows open when they were read, or
opened since, are read again once the index has been read (``bucks.catch_up``),
as copies not loaded, so what the porter loaded from them meanwhile is held
and not called extra; closed windows do not change.


Memory stays bounded whatever the windows' size: the ids are streamed into
a scratch SQLite database (a temporary file; dropped at the end), the
buck side frame by frame and the index side a page at a time
(``Index.keys``, or ``Index.contents`` with their digests), and the differences are SQL queries over it.

The parts, one concept each:

    results.py   what was found: EnvReport, IndexReport (dataclasses)
    compare.py   the comparison: ids in, differences out (``Scratch``; pure but for its scratch file)
    bucks.py     the bucks' side: their copies decoded as the porter does; the second ask (``catch_up``)
    examples.py  example lines of what differs, read again from a buck or the index
    run.py       the run: the porter's record, then per environment each side and the comparison
    render.py    the report as text or JSON
"""

from __future__ import annotations

from helios.indexaudit.render import render
from helios.indexaudit.results import Difference, EnvReport, IndexReport
from helios.indexaudit.run import audit_index, read_state

__all__ = ["Difference", "EnvReport", "IndexReport", "audit_index", "read_state", "render"]
