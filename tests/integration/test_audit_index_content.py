"""`helios audit --index --content` notices an event damaged in place: the
same id and time, another message, severity or fields. The index is loaded
by a real porter from two real bucks (sqlite, and OpenSearch through a real
osmem-server), then one event is altered inside the index behind the
porter's back: with --content the audit names exactly that event as
CHANGED, with what the bucks hold and what the index holds; without it the
audit says what it always said (ids and times only: no difference). An
untouched index passes with --content; bucks whose copies differ in content
are said, not blamed on the index; an index that cannot give content is
said and never passes."""

from __future__ import annotations

import json
import time

from helios.index.base import open_index
from helios.store.layout import BucketName, bucket_id
from tests.integration.test_audit_index import KEEP, audit_index
from tests.integration.test_audit_index_attacks import sqlite_update
from tests.integration.test_porter import (
    YESTERDAY,
    client_events,
    frames_of,
    index_events,
    plant,
    run_once,
    started_bucks_over,
)

NS = 1_000_000_000
N = 1000


def planted(tmp_path, procs, *index):
    """Two windows of yesterday, every 10th event with fields, on two bucks
    (b every other batch), loaded by the porter; returns (queries, events)."""
    events = []
    for w in range(2):
        evs = client_events(N // 2, YESTERDAY + w * 60)
        evs = [e._replace(fields={"user": f"u{i}", "ms": i * 1.5, "tags": ["a", i]}) if i % 10 == 3 else e
               for i, e in enumerate(evs)]
        frames = frames_of(evs, per=100)
        plant(tmp_path / "buck-a", "prod", YESTERDAY + w * 60, frames)
        plant(tmp_path / "buck-b", "prod", YESTERDAY + w * 60, frames[::2])
        events += evs
    qs = started_bucks_over(tmp_path, procs, "ab")
    r = run_once(tmp_path, qs, *KEEP, *index)
    assert r.returncode == 0, r.stdout + r.stderr
    return qs, events


def window_of(e):
    return bucket_id(BucketName("prod", e.time // NS // 60 * 60, 60))


def test_sqlite_an_event_rewritten_in_place_is_changed_with_the_flag_and_unseen_without(tmp_path, procs):
    qs, events = planted(tmp_path, procs)
    code, out, err = audit_index(tmp_path, qs, "--content")
    assert code == 0, out + err
    assert f"content compared for {N:,} event(s)" in out and "with the content the bucks hold" in out, out
    # The message, truncated in place: same id, same time.
    victim = events[10]
    sqlite_update(tmp_path, "UPDATE ev SET msg = ? WHERE id = ?", victim.message[:8], victim.id)
    code, out, err = audit_index(tmp_path, qs)
    assert code == 0 and "No difference" in out and "CHANGED" not in out, out + err    # as before: ids and times
    code, out, err = audit_index(tmp_path, qs, "--content")
    assert code == 1 and "0 MISSING, 0 EXTRA, 1 CHANGED" in out, out + err
    assert f"window {window_of(victim)}: 1 event(s) in the index with another content than the bucks hold" in out
    assert victim.id.hex()[:16] in out, out
    assert (f"message: the bucks hold {victim.message.decode()!r}, the index {victim.message[:8].decode()!r}"
            in out), out
    assert "1 with another content, in 1 environment(s)." in out, out
    code, out, _ = audit_index(tmp_path, qs, "--content", "-o", "json")
    prod = json.loads(out)["environments"]["prod"]
    assert code == 1 and prod["changed"] == 1 and prod["changed_windows"][0]["window"] == window_of(victim), out
    assert prod["missing"] == prod["extra"] == prod["moved"] == 0 and prod["content_checked"] == N, out
    # Put back as it was: passes again.
    sqlite_update(tmp_path, "UPDATE ev SET msg = ? WHERE id = ?", victim.message, victim.id)
    assert audit_index(tmp_path, qs, "--content")[0] == 0
    # Its severity, and another's fields dropped: exactly those two, each with what differs.
    loud, tagged = events[600], events[13]
    assert tagged.fields is not None and loud.severity is not None
    sqlite_update(tmp_path, "UPDATE ev SET sev = ? WHERE id = ?", (loud.severity + 1) % 8, loud.id)
    sqlite_update(tmp_path, "UPDATE ev SET fields = NULL WHERE id = ?", tagged.id)
    assert audit_index(tmp_path, qs)[0] == 0
    code, out, err = audit_index(tmp_path, qs, "--content")
    assert code == 1 and "0 MISSING, 0 EXTRA, 2 CHANGED" in out, out + err
    changed = [ln for ln in out.splitlines() if " | " in ln]
    assert len(changed) == 2, out
    assert any(loud.id.hex()[:16] in ln and "severity: the bucks hold" in ln for ln in changed), out
    assert any(tagged.id.hex()[:16] in ln and "fields: the bucks hold {'user': 'u13'" in ln and "the index None" in ln
               for ln in changed), out


def test_sqlite_an_event_moved_in_time_is_moved_not_also_changed(tmp_path, procs):
    qs, events = planted(tmp_path, procs)
    victim = events[700]
    sqlite_update(tmp_path, "UPDATE ev SET t = t + ? WHERE id = ?", 1800 * NS, victim.id)
    code, out, err = audit_index(tmp_path, qs, "--content")
    assert code == 1 and "0 MISSING, 0 EXTRA, 1 MOVED" in out and "CHANGED" not in out, out + err
    # Moved and rewritten: both.
    sqlite_update(tmp_path, "UPDATE ev SET host = ? WHERE id = ?", "elsewhere", victim.id)
    code, out, err = audit_index(tmp_path, qs, "--content")
    assert code == 1 and "1 MOVED, 1 CHANGED" in out and "host: the bucks hold" in out, out + err


def test_content_without_index_is_a_usage_error(tmp_path):
    import subprocess
    import sys

    from tests.helpers import ROOT

    r = subprocess.run([sys.executable, "-m", "helios", "audit", "--content", "--buck", "127.0.0.1:1"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "give --index too" in r.stderr, r.stderr


def test_two_bucks_whose_copies_of_an_event_differ_in_content_are_said_and_not_blamed_on_the_index(tmp_path, procs):
    events = client_events(400, YESTERDAY)
    forged = events[5]._replace(message=b"a copy altered on one buck")
    plant(tmp_path / "buck-a", "prod", YESTERDAY, frames_of(events))
    plant(tmp_path / "buck-b", "prod", YESTERDAY, frames_of(events[:5] + [forged] + events[6:]))
    qs = started_bucks_over(tmp_path, procs, "ab")
    assert run_once(tmp_path, qs, *KEEP).returncode == 0
    code, out, err = audit_index(tmp_path, qs, "--content")
    assert code == 0 and "CHANGED" not in out, out + err
    assert "content not checked: 1 event(s) whose copies on the bucks differ in content" in out, out
    assert "content compared for 399 event(s)" in out, out


def test_opensearch_a_document_rewritten_in_place_is_changed(tmp_path, procs, osmem_url):
    flags = ("--index", "opensearch", "--index-url", osmem_url)
    qs, events = planted(tmp_path, procs, *flags)
    code, out, err = audit_index(tmp_path, qs, *flags, "--content")
    assert code == 0 and f"content compared for {N:,} event(s)" in out, out + err
    victim = events[42]
    with open_index("opensearch", osmem_url) as ix:
        name = f"helios-recent-prod-{time.strftime('%Y.%m.%d', time.gmtime(victim.time / NS))}"
        doc = ix.client.get(index=name, id=victim.id.hex())["_source"]
        ix.client.index(index=name, id=victim.id.hex(), body=dict(doc, message="all is well"), refresh=True)
    assert any(e.message == b"all is well" for e in index_events(tmp_path, kind="opensearch", location=osmem_url))
    code, out, err = audit_index(tmp_path, qs, *flags)
    assert code == 0 and "No difference" in out, out + err
    code, out, err = audit_index(tmp_path, qs, *flags, "--content")
    assert code == 1 and "0 MISSING, 0 EXTRA, 1 CHANGED" in out, out + err
    assert victim.id.hex()[:16] in out and "the index 'all is well'" in out, out
    # Put back; then another's searchable fields_kv dropped (its field searches miss it): changed too.
    tagged = events[3]
    assert tagged.fields is not None
    with open_index("opensearch", osmem_url) as ix:
        ix.client.index(index=name, id=victim.id.hex(), body=doc, refresh=True)
        tname = f"helios-recent-prod-{time.strftime('%Y.%m.%d', time.gmtime(tagged.time / NS))}"
        tdoc = ix.client.get(index=tname, id=tagged.id.hex())["_source"]
        assert "fields_kv" in tdoc
        ix.client.index(index=tname, id=tagged.id.hex(), body={k: v for k, v in tdoc.items() if k != "fields_kv"},
                        refresh=True)
    code, out, err = audit_index(tmp_path, qs, *flags, "--content")
    assert code == 1 and "0 MISSING, 0 EXTRA, 1 CHANGED" in out, out + err
    assert tagged.id.hex()[:16] in out and "in a part not read back as the event" in out, out


class IdsOnly:
    """A real sqlite index, seen as a backend that lists ids but cannot give content (an older one)."""

    def __init__(self, index):
        self._index = index

    def __getattr__(self, name):
        if name in ("contents", "content_digests"):
            raise AttributeError(name)
        return getattr(self._index, name)


def test_an_index_that_cannot_give_content_is_said_and_never_passes(tmp_path, procs):
    from helios.indexaudit import audit_index as run_audit, render

    qs, _ = planted(tmp_path, procs)
    with open_index("sqlite", str(tmp_path / "index")) as index:
        plain = run_audit(IdsOnly(index), tmp_path / "porter", qs, recent_days=30, progress=None)
        asked = run_audit(IdsOnly(index), tmp_path / "porter", qs, recent_days=30, progress=None, content=True)
        both = run_audit(index, tmp_path / "porter", qs, recent_days=30, progress=None, content=True)
    assert plain.ok and both.ok, render(plain) + render(both)
    assert both.environments["prod"].content_checked == N
    text = render(asked)
    assert not asked.ok and "CONTENT NOT CHECKED" in text and "No difference" not in text, text
    assert "content not checked: the sqlite index cannot give its events' content" in text, text
    assert json.loads(render(asked, as_json=True))["ok"] is False
