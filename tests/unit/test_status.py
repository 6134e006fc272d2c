"""``helios status``'s judgement: which figures become warnings."""

from helios.commands.status import assess, render

NOW = 1_800_000_000.0


def stats(events, senders=None, reports=None, **kw):
    return {"name": "buck-a", "started": NOW - 3600, "events": events, "senders": senders or {},
            "reports": reports or {}, "disk_free": 50e9, "disk_total": 100e9, "stored_bytes": 1e9, **kw}


def test_rate_from_two_rounds_and_a_quiet_mesh_has_no_warnings():
    st = assess({"a": stats(100)}, {"a": stats(600)}, 0.5, NOW)
    assert st.bucks[0]["rate"] == 1000 and st.warnings == []
    assert "1,000 ev/s" in render(st, colour=False)


def test_a_down_buck_a_sender_behind_or_quiet_a_stale_porter_and_a_full_disk_are_warned():
    senders = {"prod/web-1": {"last_seen": NOW - 1, "events": 5, "newest_event": NOW - 301},
               "prod/db-1": {"last_seen": NOW - 400, "events": 5, "newest_event": NOW - 400},
               "prod/gone": {"last_seen": NOW - 4000, "events": 5, "newest_event": NOW - 4000}}
    reports = {"porter@p": {"received": NOW - 3600, "environments": {}, "problems": ["archive s3 down: timeout"]}}
    second = {"a": stats(10, senders, reports, disk_free=1e9), "b": TimeoutError("no answer within 1.0 s")}
    st = assess({}, second, 1.0, NOW)
    text = "\n".join(st.warnings)
    assert "buck b is DOWN: no answer within 1.0 s" in text
    assert "prod/web-1 is behind: its newest event was 5 min old" in text
    assert "prod/db-1 has sent nothing for 7 min" in text
    assert "prod/gone" not in text and [s["sender"] for s in st.senders] == ["prod/db-1", "prod/web-1"]
    assert "porter porter@p last reported 60 min ago" in text and "archive s3 down" in text
    assert "buck a has 1.0 GB free" in text
