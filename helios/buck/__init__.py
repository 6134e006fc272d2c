"""The buck: the ZeroMQ service (service), its disk-full handling (diskfull) and its
HTTP ingest endpoint (http_ingest), one package because they are parts of one service."""

from helios.buck.service import Buck

__all__ = ["Buck"]
