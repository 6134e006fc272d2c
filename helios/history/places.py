"""Where the indexes and the sources of history are, from the config.

The recent index and the archive are the porter's (``[porter]`` index,
index_dir or index_url, index_name; archive settings; bucks). History
indexes use the same backend as the recent index: with sqlite they live
under ``[history] dir``/indexes, with Elasticsearch or OpenSearch on the
same server, named ``helios-history-ID``.
"""

from __future__ import annotations

from pathlib import Path

from helios.history.requests import Request, RequestStore

__all__ = ["history_index", "open_archive", "recent_index", "store"]


def store(cfg) -> RequestStore:
    return RequestStore(cfg.history.dir)


def recent_index(cfg, **options):
    from helios.index.base import open_index

    p = cfg.porter
    return open_index(p.index, p.index_dir if p.index == "sqlite" else p.index_url, p.index_name, **options)


def history_location(cfg, kind: str) -> str:
    return str(Path(cfg.history.dir) / "indexes") if kind == "sqlite" else cfg.porter.index_url


def history_index(cfg, request: Request, **options):
    """The index of ``request`` (made on first load)."""
    from helios.index.base import open_index

    return open_index(request.index_kind, history_location(cfg, request.index_kind), request.index_name, **options)


def open_archive(cfg):
    """The porter's archive (folder or S3)."""
    from helios.porter.archiving import archive_spec, open_archive as open_spec

    return open_spec(archive_spec(cfg.porter))


def describe_archive(cfg) -> str:
    from helios.porter.archiving import archive_spec, describe_location

    return f"{cfg.porter.archive} {describe_location(archive_spec(cfg.porter))}"
