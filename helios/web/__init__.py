"""The web process: the browser live tail (``helios web``).

One process subscribes to the live feed of every buck and serves the page
and its socket.io endpoint; browsers talk only to it. The parts, bottom up:

    lines.py     the shape of a line as the page gets it (pure)
    filters.py   what a browser asked to see, checked and compiled (pure)
    dedup.py     drop the copy of an event that came from the other buck (pure)
    reorder.py   merge the bucks' streams in time order within a short delay (pure)
    sessions.py  one browser's filter, queue, rate limit and drop count (pure)
    auth.py      who may log in, CSRF, and the environments each account may see
    feed.py      the thread that reads every buck's PUB and feeds the sessions
    app.py       Flask and socket.io: the page, the events, the HTTP status
"""
