"""Prometheus metrics of a Helios service: one text endpoint per process.

Off by default; ``metrics = "HOST:PORT"`` in a service's section (``[buck]``,
``[tailer]``, ``[relay]``, ``[porter]``, ``[web]``) serves ``GET http://HOST:PORT/metrics`` from a
thread of its own. Port 0 picks a free port: the service logs the address
and writes it as ``"metrics"`` in its ``stats.json``.

Nothing here runs on a service's hot path. Each service already counts what
it does in plain dicts (``Buck.counts``, ``Tailer.counts``, ``Fanout.counts``,
...); a collector reads them when Prometheus scrapes (a dict copy is one
C-level step under the GIL, so reading from the scrape thread is safe), and
the gauges that need a look at the disk (spool size, read lag) are computed
then too. The one histogram, fsync latency, is fed by
``helios.store.durable``, through which every fsync goes. Each service has a
registry of its own (never prometheus_client's global one), plus the standard
``process_*`` metrics (CPU, memory, open files).

The metrics (counters end in ``_total``; the unit of each is in its name or
its help text)::

    every service   helios_info{service,name,version}        1
                    helios_fsync_seconds                     histogram of fsync latency
    buck            helios_events_in_total, helios_frames_in_total, helios_bytes_in_total
                                                             stored (ZeroMQ and HTTP ingest)
                    helios_dropped_frames_total{reason}      frames refused or not written
                    helios_events_out_total, helios_messages_out_total
                                                             sent on the live feed
                    helios_publish_queue_full_total          a subscriber's queue was full
                    helios_publish_dropped_events_total{subscriber}
                                                             live events a subscriber missed, as it reports
                    helios_live_subscriptions, helios_open_buckets
                    helios_http_requests_total{code}         HTTP ingest requests by status code
                    helios_input_events_total{input}, helios_input_bytes_total{input},
                    helios_input_dropped_total{input}, helios_input_errors_total{input}
                                                             per input: the kinds frames name (file, journal,
                                                             container, syslog/udp|tcp|tls, inventory),
                                                             zmq (unmarked frames: clients, older senders),
                                                             http (/v1/events), otlp (/v1/logs); see input_counts
    tailer          helios_events_in_total, helios_bytes_in_total   lines read, and their bytes
                    helios_file_read_lag_bytes{path}         bytes of a followed file not read yet
                    helios_files_followed
                    helios_input_{events,bytes,errors}_total{input}   per input: files, journal
    relay           helios_events_in_total, helios_frames_in_total, helios_bytes_in_total
                                                             taken from applications
                    helios_dropped_frames_total{reason}      frames refused
    tailer, relay   helios_events_out_total, helios_frames_out_total, helios_bytes_out_total
                                                             sent live to at least one buck
                    helios_live_unsent_frames_total          no buck took them live: the re-send will
                    helios_short_copies_total                fewer bucks than ``copies`` took them
                    helios_frames_to_buck_total{buck}        frames each buck took live
                    helios_buck_connected{buck}, helios_reconnects_total{buck}
                    helios_spool_bytes, helios_spool_buckets, helios_spool_oldest_age_seconds
                    helios_spool_resent_buckets_total
                    helios_spool_dropped_buckets_total, helios_spool_dropped_bytes_total
                                                             pruned before any buck had them: lost
    porter          helios_windows_{indexed,archived,pruned}_total
                    helios_windows_{index,archive,prune}_behind{environment}
                                                             windows due but not done yet (the lag)
                    helios_events_too_old_total              left out of the index: older than recent_days
    web             helios_events_in_total, helios_events_unique_total, helios_events_out_total
                    helios_dropped_events_total{reason}, helios_web_sessions
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from helios import __version__
from helios.errors import ServiceError
from helios.store import durable, layout

log = logging.getLogger(__name__)

FSYNC_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Families = Callable[[], Iterable[Metric]]


# --- building metric families from plain numbers ---

def counter(name: str, doc: str, value: float | Mapping[str, float], label: str | None = None) -> Metric:
    """A counter family ``name_total``: one value, or one per ``label`` value."""
    if label is None:
        return CounterMetricFamily(name, doc, value=value)
    family = CounterMetricFamily(name, doc, labels=[label])
    for key, v in sorted(value.items()):
        family.add_metric([str(key)], v)
    return family


def gauge(name: str, doc: str, value: float | Mapping[str, float], label: str | None = None) -> Metric:
    if label is None:
        return GaugeMetricFamily(name, doc, value=value)
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, v in sorted(value.items()):
        family.add_metric([str(key)], v)
    return family


class _Collector:
    """A prometheus_client collector that asks a function at scrape time."""

    def __init__(self, families: Families) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        # The service's loop may add a key to a dict while we copy it; one
        # retry is enough (it adds keys rarely: a new reason, a new buck).
        for attempt in (1, 2):
            try:
                return list(self.families())
            except RuntimeError:
                if attempt == 2:
                    raise
        return []


# --- the endpoint ---

class Endpoint:
    """A service's registry and its HTTP server. ``address`` is HOST:PORT as
    bound (the real port when 0 was asked for)."""

    def __init__(self, service: str, name: str, families: Families) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.info = {"service": service, "name": name, "version": __version__}
        self.registry.register(_Collector(self._info))
        self.registry.register(_Collector(families))
        ProcessCollector(registry=self.registry)
        self.fsync = Histogram("helios_fsync_seconds", "Seconds each fsync took (data files, "
                               "directories, state files).", buckets=FSYNC_BUCKETS, registry=self.registry)
        self.server = None
        self.address = ""

    def _info(self) -> Iterable[Metric]:
        family = GaugeMetricFamily("helios_info", "The service, its name and Helios' version.",
                                   labels=list(self.info))
        family.add_metric(list(self.info.values()), 1)
        yield family

    @classmethod
    def start(cls, service: str, name: str, address: str, families: Families) -> "Endpoint":
        """Serve the metrics on ``address`` (HOST:PORT); raises ServiceError
        when it cannot listen."""
        endpoint = cls(service, name, families)
        endpoint.serve(address)
        return endpoint

    def serve(self, address: str) -> str:
        self.server, self.address = serve(address, self.registry)
        durable.observers.append(self.fsync.observe)
        log.info("The %s serves its metrics on http://%s/metrics.", self.info["service"], self.address)
        return self.address

    def close(self) -> None:
        if self.fsync.observe in durable.observers:
            durable.observers.remove(self.fsync.observe)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def serve(address: str, registry: CollectorRegistry) -> tuple[Any, str]:
    """Start the text endpoint of ``registry`` on ``address`` (HOST:PORT, IPv6
    hosts in brackets, port 0 for a free one) in a daemon thread. Returns the
    server (``shutdown()`` stops it) and the HOST:PORT it listens on."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        server, _ = start_http_server(int(port), addr=host, registry=registry)
    except (OSError, ValueError) as exc:
        raise ServiceError(f"cannot serve metrics on {address}: {exc}") from None
    bound = server.server_address[1]
    return server, f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"


# --- what each service exposes ---

def buck_families(buck) -> Families:
    """A ``helios.buck.service.Buck``'s counts, read at scrape time."""
    def families() -> Iterable[Metric]:
        c, bad = dict(buck.counts), dict(buck.bad)
        yield counter("helios_events_in", "Events stored (ZeroMQ and HTTP ingest).", c.get("events", 0))
        yield counter("helios_frames_in", "Batch frames stored.", c.get("frames", 0))
        yield counter("helios_bytes_in", "Bytes of batch frames stored, as they arrived.", c.get("bytes", 0))
        drops = {reason: n for reason, n in bad.items()}
        drops["write error"] = c.get("write_errors", 0)
        yield counter("helios_dropped_frames", "Frames refused (the reason says why) or accepted "
                      "but not written (write error: lost).", drops, "reason")
        yield counter("helios_corrected_events", "Events kept with a corrected time (their time as sent "
                      "was not sane; marked in their fields).", c.get("corrected_events", 0))
        yield gauge("helios_open_buckets", "Bucket files open for appending.", buck.buckets.open_count)
        yield counter("helios_refused_messages", "Messages refused whole: over a whole-message limit "
                      "(max_message_bytes, max_message_parts, query_max_request), by socket and reason.",
                      {f"{r.name}: {why}": n for r in list(buck.receivers.values()) for why, n in dict(r.refused).items()},
                      "reason")
        pub = buck.publisher
        if pub is not None:
            p = dict(pub.counts)
            yield counter("helios_events_out", "Events sent on the live feed.", p.get("events", 0))
            yield counter("helios_messages_out", "Messages sent on the live feed.", p.get("messages", 0))
            yield counter("helios_publish_queue_full", "Times a live subscriber's queue was full "
                          "(it missed messages from then on, until it read again).", p.get("queue_full", 0))
            reports = dict(pub.reports)
            yield counter("helios_publish_dropped_events", "Live events each subscriber missed, "
                          "as it reports them.", {s.hex(): e for s, (_, e) in reports.items()}, "subscriber")
            yield gauge("helios_live_subscriptions", "Topic prefixes live subscribers ask for.",
                        pub.subscriptions)
            yield counter("helios_live_subscriptions_refused", "Live subscriptions ignored: over "
                          "live_max_subscriptions or live_max_subscriptions_per_peer.",
                          p.get("subscriptions_refused", 0))
        if buck.http is not None:
            yield counter("helios_http_requests", "HTTP ingest requests by status code.",
                          http_codes(dict(buck.http.counts)), "code")
        inputs = input_counts(c, bad, dict(buck.http.counts) if buck.http is not None else None,
                              {k: list(v) for k, v in list(buck.inputs.items())})
        for what, doc in (("events", "Events stored, by input."),
                          ("bytes", "Bytes taken, by input: frames as they arrived (zmq and the kinds "
                                    "frames name: file, journal, syslog/tcp, ...), request bodies as they "
                                    "arrived (http, otlp)."),
                          ("dropped", "What an input refused and did not store: frames (zmq and the named "
                                      "kinds; a frame too broken to name its kind counts as zmq) or events "
                                      "and log records in requests otherwise answered (http, otlp)."),
                          ("errors", "Failures by input: frames accepted but not written (zmq and the named "
                                     "kinds), requests answered with an error status (http, otlp).")):
            yield counter(f"helios_input_{what}", doc, {k: v[what] for k, v in inputs.items()}, "input")
    return families


def input_counts(buck: Mapping[str, int], bad: Mapping[str, int], http: Mapping[str, int] | None,
                 kinds: Mapping[str, list[int]] | None = None) -> dict[str, dict[str, int]]:
    """A buck's counts per input (zmq, http, otlp, and the kinds frames name:
    file, journal, container, syslog/udp, ...): events, bytes, dropped and
    errors. The buck counts every stored frame; what its HTTP ingest stored
    and what frames of a named kind brought are taken out of those to leave
    the share of unmarked ZeroMQ frames ("zmq"). ``kinds``: ``Buck.inputs``
    (kind -> [events, bytes, frames refused, frames not written])."""
    h = http or {}
    out = {"zmq": {"events": buck.get("events", 0), "bytes": buck.get("bytes", 0),
                   "dropped": sum(bad.values()), "errors": buck.get("write_errors", 0)}}
    for kind, (events, nbytes, dropped, errors) in sorted((kinds or {}).items()):
        out[kind] = {"events": events, "bytes": nbytes, "dropped": dropped, "errors": errors}
        z = out["zmq"]
        z["events"], z["bytes"] = z["events"] - events, z["bytes"] - nbytes
        z["dropped"], z["errors"] = max(z["dropped"] - dropped, 0), max(z["errors"] - errors, 0)
    if http is None:
        for key in ("events", "bytes"):
            out["zmq"][key] = max(out["zmq"][key], 0)
        return out
    for source in ("http", "otlp"):
        out[source] = {"events": h.get(f"{source}_events", 0), "bytes": h.get(f"{source}_bytes", 0),
                       "dropped": h.get(f"{source}_rejected", 0), "errors": h.get(f"{source}_errors", 0)}
        out["zmq"]["events"] -= out[source]["events"]
        out["zmq"]["bytes"] -= h.get(f"{source}_frame_bytes", 0)
    for key in ("events", "bytes"):
        out["zmq"][key] = max(out["zmq"][key], 0)  # HTTP counts "received" requests before the loop does
    return out


def http_codes(counts: Mapping[str, int]) -> dict[str, int]:
    """HTTP ingest's counts (ok_LEVEL, status_CODE, overloaded) by status code."""
    codes: dict[str, int] = {}
    for key, n in counts.items():
        if key.startswith("ok_"):
            code = "200"
        elif key.startswith("status_"):
            code = key[len("status_"):]
        elif key == "overloaded":
            code = "503"
        else:
            continue
        codes[code] = codes.get(code, 0) + n
    return codes


def sender_families(fanout_of: Callable[[], Any], spool_of: Callable[[], Any], counts: Mapping[str, int]
                    ) -> Iterable[Metric]:
    """What the tailer and the relay share: frames out to the bucks, the
    connections to them, and the spool."""
    fanout = fanout_of()
    f = dict(fanout.counts)
    yield counter("helios_events_out", "Events in frames that at least one buck took live.",
                  counts.get("events_sent", 0))
    yield counter("helios_frames_out", "Frames that at least one buck took live.", f.get("batches", 0))
    yield counter("helios_bytes_out", "Bytes of frames that at least one buck took live.",
                  counts.get("bytes_sent", 0))
    yield counter("helios_live_unsent_frames", "Frames no buck took live (all down or busy); they "
                  "are in the spool and reach a buck with its re-send.", f.get("unsent", 0))
    yield counter("helios_short_copies", "Frames fewer bucks than 'copies' took live.", f.get("short_copies", 0))
    yield counter("helios_frames_to_buck", "Frames each buck took live.", dict(fanout.sent_to), "buck")
    yield gauge("helios_buck_connected", "1 while connected to the buck.", dict(fanout.connected), "buck")
    yield counter("helios_reconnects", "Connections to the buck made again after it was lost.",
                  fanout.reconnects(), "buck")
    spool = spool_of()
    if spool is not None:
        yield from spool_families(spool.root, time.time())
        s = dict(spool.counts)
        yield counter("helios_spool_resent_buckets", "Closed spool buckets re-sent whole to a buck.",
                      counts.get("resent_buckets", 0))
        yield counter("helios_spool_dropped_buckets", "Spool buckets pruned (size or age limit) before "
                      "any buck had them: their events are lost unless a buck got them live.",
                      s.get("dropped_buckets", 0))
        yield counter("helios_spool_dropped_bytes", "Bytes of those spool buckets.", s.get("dropped_bytes", 0))


def spool_families(root: Path, now: float) -> Iterable[Metric]:
    """Size and age of a spool, from the disk (the scrape thread's own look)."""
    total = count = 0
    oldest = None
    for name, path in layout.list_buckets(root):
        try:
            total += path.stat().st_size
        except OSError:  # pruned meanwhile
            continue
        count += 1
        oldest = name.start if oldest is None else min(oldest, name.start)
    yield gauge("helios_spool_bytes", "Bytes in the local spool.", total)
    yield gauge("helios_spool_buckets", "Bucket files in the local spool.", count)
    yield gauge("helios_spool_oldest_age_seconds", "Age of the oldest spool bucket (since its window "
                "began); 0 when the spool is empty.", max(now - oldest, 0) if oldest is not None else 0)


def tailer_families(tailer) -> Families:
    """A ``helios.services.tailer.Tailer``'s counts, its files' lag and its spool."""
    def families() -> Iterable[Metric]:
        c = dict(tailer.counts)
        yield counter("helios_events_in", "Lines read from the followed files.", c.get("lines", 0))
        yield counter("helios_bytes_in", "Bytes of the lines batched.", c.get("line_bytes", 0))
        yield counter("helios_lines_dropped", "Lines a [[tailer.parse]] drop rule kept from leaving the host.",
                      c.get("dropped", 0))
        lag = read_lag(tailer.watcher)
        yield gauge("helios_file_read_lag_bytes", "Bytes of a followed file not read yet (its size "
                    "minus the read position).", lag, "path")
        yield gauge("helios_files_followed", "Files followed (open, draining or parked).", len(lag))
        yield from input_families(tailer, c)
        yield from sender_families(lambda: tailer.fanout, lambda: tailer.spool, c)
    return families


def input_families(tailer, c: dict) -> Iterable[Metric]:
    """Per input of a tailer ("files", "journal"): events and bytes read, and
    errors (journal: entries journalctl wrote that are not events, and
    journalctl ending by itself)."""
    events, nbytes, errors = {"files": c.get("lines", 0)}, {"files": c.get("line_bytes", 0)}, {"files": 0}
    journal = getattr(tailer, "journal", None)
    if journal is not None:
        j = dict(journal.counts)
        events["journal"], nbytes["journal"], errors["journal"] = j["entries"], j["bytes"], j["errors"]
    yield counter("helios_input_events", "Events read, per input (journal: entries sent, the excluded "
                  "left out).", events, "input")
    yield counter("helios_input_bytes", "Bytes read, per input (journal: of journalctl's export format).",
                  nbytes, "input")
    yield counter("helios_input_errors", "Errors, per input.", errors, "input")


def read_lag(watcher) -> dict[str, int]:
    """Per followed file: its size minus the read position. A rotated file
    still being read is shown as "PATH (rotated)"."""
    lag: dict[str, int] = {}
    files = [(f, False) for f in list(watcher.current.values())]
    files += [(f, True) for f in list(watcher.draining)]
    files += [(f, False) for f in list(watcher.parked.values())]
    for f, rotated in files:
        fd = f.fd
        try:
            # The file's own descriptor when open (the path may name another
            # file by now); either way, only if it is still the same file.
            st = os.fstat(fd) if fd is not None else os.stat(f.path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) != (f.dev, f.ino):
            continue
        label = f"{f.path} (rotated)" if rotated else f.path
        lag[label] = lag.get(label, 0) + max(st.st_size - f.pos, 0)
    return lag


def porter_families(porter) -> Families:
    """A ``helios.services.porter.Porter``'s counts and, per environment, the
    closed windows still to index, archive and prune (its status)."""
    def families() -> Iterable[Metric]:
        c = dict(porter.counts)
        for job in ("indexed", "archived", "pruned"):
            yield counter(f"helios_windows_{job}", f"Windows {job} by this porter.", c.get(job, 0))
        yield counter("helios_events_too_old", "Events left out of the index by this porter: their times are "
                      "before the first day it keeps (recent_days).", c.get("events_too_old", 0))
        # The status of the porter's last pass: its state database belongs to its own thread.
        envs = (getattr(porter, "last_status", None) or {}).get("environments") or {}
        for job, done in (("index", "indexed"), ("archive", "archived"), ("prune", "pruned")):
            yield gauge(f"helios_windows_{job}_behind", f"Windows due but not yet {done}, by environment.",
                        {env: e.get(f"{job}_behind", 0) for env, e in envs.items()}, "environment")
        q = ((getattr(porter, "last_status", None) or {}).get("quarantine") or {}).get("environments") or {}
        yield gauge("helios_quarantined_events", "Events the porter could not index or archive, kept in its "
                    "quarantine, by environment.", {env: d.get("events", 0) for env, d in q.items()}, "environment")
        yield gauge("helios_quarantined_frames", "Frames kept in the porter's quarantine (undecodable ones "
                    "included), by environment.", {env: d.get("frames", 0) for env, d in q.items()}, "environment")
    return families


def web_families(feed, hub) -> Families:
    """A ``helios web`` process: its live feed's counts and its open pages."""
    def families() -> Iterable[Metric]:
        c = dict(feed.counts)
        yield counter("helios_events_in", "Live events received from the bucks (every copy).", c.get("received", 0))
        yield counter("helios_events_unique", "Live events kept once copies were dropped.", c.get("unique", 0))
        yield counter("helios_events_out", "Events sent to browsers.", c.get("sent", 0))
        yield counter("helios_dropped_events", "Events not sent to a browser that could not keep up, "
                      "or too old to place in time.", {"slow browser": c.get("dropped", 0),
                                                       "too old": c.get("too_old", 0)}, "reason")
        yield gauge("helios_web_sessions", "Open live tail pages.", len(hub.sessions))
    return families


def relay_families(relay) -> Families:
    """A ``helios.services.relay.Relay``'s counts and spool."""
    def families() -> Iterable[Metric]:
        c, bad = dict(relay.counts), dict(relay.bad)
        yield counter("helios_events_in", "Events taken from applications.", c.get("events", 0))
        yield counter("helios_frames_in", "Frames taken from applications.", c.get("frames", 0))
        yield counter("helios_bytes_in", "Bytes of frames taken from applications.", c.get("bytes", 0))
        drops = dict(bad)
        drops["spool write error"] = c.get("spool_errors", 0)
        yield counter("helios_dropped_frames", "Frames refused (the reason says why), or not "
                      "written to the spool (spool write error: sent live only).", drops, "reason")
        receiver = relay.receiver
        yield counter("helios_refused_messages", "Messages refused whole: over max_message_bytes or "
                      "max_message_parts.", dict(receiver.refused) if receiver is not None else {}, "reason")
        yield from sender_families(lambda: relay.fanout, lambda: relay.spool, c)
        if relay.syslog is not None:
            yield from relay.syslog.families()  # per input: helios_input_* (helios.syslognet.server)
    return families
