"""``helios status`` says stored copies and distinct events apart (issue 21:
"counts are about 3x reality")."""

from helios.commands.status import assess, render

NOW = 1_800_000_000.0


def buck(name, copies, sender_copies):
    return {"name": name, "started": NOW - 60, "events": copies, "stored_bytes": 123_000,
            "senders": {"demo/vm": {"last_seen": NOW - 1, "events": sender_copies, "newest_event": NOW - 2}},
            "reports": {"porter@p": {"received": NOW - 1, "environments": {"demo": {
                "indexed": NOW - 60, "archived": None, "pruned": None, "behind": "index 0 window(s)",
                "too_old": 0, "events_indexed": 1_000}}}}}


def test_the_bucks_count_copies_and_the_porter_distinct_events():
    st = assess({}, {"a": buck("buck-a", 1_500, 1_500), "b": buck("buck-b", 1_500, 1_500)}, 0, NOW)
    text = render(st, colour=False)
    assert "1,500 copies stored since start  123.0 KB on disk" in text
    assert "about 3 copies of an event" in text
    assert "3,000 copies stored by 2 buck(s)" in text  # a sender's events, as the bucks hold them
    assert "demo: indexed to" in text and "(1,000 distinct events)" in text
    assert " events  stored " not in text
