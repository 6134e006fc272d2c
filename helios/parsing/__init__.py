"""Reading log lines: the pieces behind ``helios.parse.Parser``.

- ``severity``: level words and numbers to syslog's 0..7;
- ``timestamps``: zones (``local`` with its DST rules) and non-ISO layouts;
- ``fields``: ``key=value`` pairs and RFC 5424 structured data;
- ``jsonlog``: which JSON keys (ECS, OpenTelemetry, ...) are time, host, app, level;
- ``containers``: Docker json-file and CRI records, and the joiner of partial lines;
- ``rules``: user rules (regex or grok) and the grok library;
- ``profiles``: which parser reads which path, from ``[[tailer.parse]]``.

All pure: bytes in, values out. ``helios.parse`` keeps the public names
(``Parser``, ``Columns``, ``FORMATS``).
"""
