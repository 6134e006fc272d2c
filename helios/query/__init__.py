"""Bucket queries: list, fetch, stats and prune the buckets a buck holds.

``protocol`` owns the wire format (pure), ``server`` answers on a buck's
ROUTER socket, ``client`` asks many bucks at once over DEALER sockets.
"""
