"""The porter's jobs, each a unit with one interface, ``run_pass(Pass) ->
bool`` (did it work), over a shared ``Context``; ``helios.services.porter``
runs them in this order every pass:

- ``index``: closed windows into the recent index (``IndexJob``);
- ``archive``: old windows packed into the archive (``ArchiveJob``);
- ``prune``: windows indexed and archived deleted from the bucks (``PruneJob``);
- ``retention``: old days out of the index, old state forgotten (``RetentionJob``);
- ``report``: ``status.json`` and the report left with the bucks (``ReportJob``).

``window`` holds what index and archive share (fetch, merge, quarantine,
dedup, lease, backoff)."""

from helios.porter.jobs.archive import ArchiveJob
from helios.porter.jobs.base import Backoff, Context, Pass, PassJob
from helios.porter.jobs.index import IndexJob
from helios.porter.jobs.prune import PruneJob
from helios.porter.jobs.report import ReportJob
from helios.porter.jobs.retention import RetentionJob

__all__ = ["ArchiveJob", "Backoff", "Context", "IndexJob", "Pass", "PassJob", "PruneJob", "ReportJob",
           "RetentionJob"]
