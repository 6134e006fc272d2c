"""Search indexes: the query model (``query``), the small interface every
backend offers and its factory (``base``), and the backends: ``sqlite``
(embedded default) and ``elastic`` (Elasticsearch and OpenSearch)."""

from helios.index.base import DEFAULT_NAME, KINDS, Index, open_index, scan
from helios.index.query import Query, format_query, matches, parse_query

__all__ = ["DEFAULT_NAME", "KINDS", "Index", "Query", "format_query", "matches", "open_index", "parse_query", "scan"]
