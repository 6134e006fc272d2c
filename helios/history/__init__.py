"""History on demand: any past window back in a temporary index of its own.

    requests.py  the durable request store and its state machine (pure SQLite)
    intake.py    checking and taking a request (the CLI's and archie's one way in)
    sources.py   the windows a range needs, from the archive and the bucks, and reading one
    builder.py   filling an index from those windows (history builds and ``helios rebuild``)
    serve.py     ``helios history serve``: claims requests, builds them, expires them
    places.py    where the indexes, the archive and the store are, from the config

The web (archie), the CLI and the builders share nothing but the request
store (``[history] dir``/requests.db) and the indexes: no process imports
another's service.
"""
