"""The index audit's report as text and JSON (``helios.indexaudit.render``): pure."""

from __future__ import annotations

import json

from helios.indexaudit import Difference, EnvReport, IndexReport, render


def report(**env) -> IndexReport:
    r = IndexReport("sqlite /x (helios-recent)", "/state", ["tcp://a", "tcp://b"], answered=2)
    r.environments["prod"] = EnvReport("prod", windows_checked=2, events_checked=10, index_events=10, **env)
    return r


def test_a_clean_report_says_no_difference_and_is_ok():
    text = render(report())
    assert "environment prod: 2 window(s) loaded and checked, 10 event(s) looked for" in text and "OK" in text
    assert text.splitlines()[-1].startswith("No difference")
    assert json.loads(render(report(), as_json=True))["ok"] is True


def test_each_kind_of_difference_is_listed_per_window_with_its_examples_and_fails():
    r = report(missing=[Difference("prod/w1", 2, ["m1", "m2"])], extra=[Difference("prod/w2", 1, ["x1"])],
               moved=[Difference("prod/w1", 1, ["v1 (the index has it at T)"])], duplicates=1,
               duplicate_examples=["d1"])
    text = render(r)
    assert "2 MISSING, 1 EXTRA, 1 DUPLICATED, 1 MOVED" in text, text
    assert "  window prod/w1: 2 event(s) the bucks hold are not in the index\n      m1\n      m2" in text
    assert "  received in window prod/w2: 1 event(s) in the index that no buck holds\n      x1" in text
    assert "  window prod/w1: 1 event(s) in the index at another time than the bucks hold them\n      v1" in text
    assert "  1 id(s) held more than once in the index\n      d1" in text
    assert text.splitlines()[-1] == ("2 event(s) missing from the index and 1 extra in it, 1 at another time, "
                                     "in 1 environment(s).")
    doc = json.loads(render(r, as_json=True))
    prod = doc["environments"]["prod"]
    assert doc["ok"] is False and (prod["missing"], prod["extra"], prod["moved"], prod["duplicates"]) == (2, 1, 1, 1)
    assert prod["moved_windows"] == [{"window": "prod/w1", "count": 1, "examples": ["v1 (the index has it at T)"]}]


def test_what_was_not_checked_is_said_and_does_not_fail():
    r = report(not_loaded=["prod/w3 (open)"], pruned=1, too_old=4, pending=2, aside=1, disagree=3,
               extras_skipped="a buck did not answer (the events only it holds would look extra)")
    text = render(r)
    for said in ("not yet loaded by the porter: prod/w3 (open)", "1 window(s) loaded and since pruned",
                 "4 event(s) older than the index keeps", "2 event(s) also held in a window not yet loaded",
                 "1 event(s) the porter sets aside", "not checked for moves: 3 event(s) whose copies on the bucks "
                 "differ in time", "extras not checked: a buck did not answer"):
        assert said in text, (said, text)
    assert r.ok and json.loads(render(r, as_json=True))["environments"]["prod"]["bucks_disagree"] == 3


def test_nothing_answered_or_nothing_checked_is_nothing_audited_and_fails():
    r = IndexReport("sqlite /x (helios-recent)", "/state", ["tcp://a"], unreachable=["tcp://a: no answer"])
    assert render(r).splitlines()[-1] == "Nothing audited: no buck answered." and not r.ok
    r = report()
    r.environments["prod"].windows_checked = 0
    assert render(r).splitlines()[-1].startswith("Nothing audited: no window is both loaded") and not r.ok


# ---------------------------------------------------------------- windows loaded into another index

X = "sqlite /old/index (helios-recent)"
Y = "opensearch http://search:9200 (helios-recent)"


def test_a_window_is_loaded_elsewhere_only_when_marked_loaded_into_another_recorded_index():
    from helios.indexaudit.results import loaded_elsewhere

    assert loaded_elsewhere(X, True, Y) == X
    assert loaded_elsewhere(Y, True, Y) is None          # this index
    assert loaded_elsewhere(None, True, Y) is None       # an older state: as before, taken to be this one
    assert loaded_elsewhere(X, False, Y) is None         # not loaded (marks taken off to load again)
    assert loaded_elsewhere(X, True, None) is None       # this index's identity not known: as before


def test_the_identity_of_an_index_is_the_one_the_porter_records():
    from types import SimpleNamespace

    from helios.indexaudit.run import identity_of
    from helios.porter.state import index_identity

    assert identity_of(SimpleNamespace(kind="sqlite", location="idx", name="n")) == index_identity("sqlite", "idx", "n")
    assert identity_of(SimpleNamespace(kind="opensearch", url="http://u:p@Search:9200/", name="n")) == \
        "opensearch http://search:9200 (n)"                  # never credentials, as the porter records it
    assert identity_of(SimpleNamespace(kind="sqlite", name="n")) is None


def elsewhere_report(checked=2, porter_index=None, windows=("prod/w1", "prod/w2")):
    r = report(elsewhere={X: list(windows)})
    r.environments["prod"].windows_checked = checked
    r.identity, r.porter_index = Y, porter_index
    return r


def test_windows_loaded_into_another_index_are_said_with_what_the_porter_does_and_do_not_fail():
    r = elsewhere_report()
    text = render(r)
    assert (f"  not checked: 2 window(s) were loaded into {X}, not this index ({Y}): the porter loads them again "
            f"at its next start on {Y} (prod/w1, prod/w2)") in text, text
    assert "MISSING" not in text and text.splitlines()[-1].startswith("No difference") and r.ok
    # The porter's config still names the old index: it will not load them here.
    text = render(elsewhere_report(porter_index=X))
    assert f"not this index ({Y}): the porter uses {X} (prod/w1, prod/w2)" in text, text
    # Its config names this one: it loads them at its next start.
    assert "at its next start on" in render(elsewhere_report(porter_index=Y))
    # Many windows: the first five named, the rest counted.
    text = render(elsewhere_report(windows=[f"prod/w{i}" for i in range(8)]))
    assert "8 window(s) were loaded into" in text and "prod/w4 and 3 more)" in text, text
    doc = json.loads(render(elsewhere_report(porter_index=X), as_json=True))
    assert doc["index_identity"] == Y and doc["porter_config_index"] == X
    assert doc["environments"]["prod"]["loaded_elsewhere"] == {X: ["prod/w1", "prod/w2"]} and doc["ok"] is True


def test_when_every_window_went_into_another_index_nothing_is_audited_and_it_fails():
    r = elsewhere_report(checked=0)
    text = render(r)
    assert text.splitlines()[-1] == ("Nothing audited: no window is both loaded by the porter into this index and "
                                     "still held by a buck.") and not r.ok
    assert "were loaded into" in text and "MISSING" not in text


def test_an_older_state_without_the_index_column_is_read_as_before(tmp_path):
    import sqlite3

    from helios.indexaudit import read_state
    from helios.porter.state import State
    from helios.store.layout import BucketName

    st = State(tmp_path / "porter.db")
    name = BucketName("prod", 1_699_999_980, 60)
    st.mark_indexed(name, 10, ["tcp://a"], into=X)
    st.close()
    with sqlite3.connect(tmp_path / "porter.db") as c:
        c.execute("ALTER TABLE windows DROP COLUMN index_into")
        c.execute("ALTER TABLE windows DROP COLUMN index_inventory")
    c.close()
    windows, _ = read_state(tmp_path)
    ws = windows[name]
    assert ws.indexed and ws.index_into is None and ws.index_inventory is None and ws.index_sources == {"tcp://a"}
    # Read only: the audit did not migrate it.
    with sqlite3.connect(tmp_path / "porter.db") as c:
        assert "index_into" not in {r[1] for r in c.execute("PRAGMA table_info(windows)")}
    c.close()


def content_report(**env) -> IndexReport:
    r = report(**env)
    r.content = True
    return r


def test_changed_events_are_listed_per_window_and_fail_and_a_clean_content_check_says_so():
    clean = content_report(content_checked=10)
    text = render(clean)
    assert "  content compared for 10 event(s)" in text and "with the content the bucks hold" in text, text
    assert json.loads(render(clean, as_json=True))["environments"]["prod"]["content_checked"] == 10
    r = content_report(content_checked=10, changed=[Difference("prod/w1", 1, ["c1 | message: ..."])],
                       content_disagree=2)
    text = render(r)
    assert "0 MISSING, 0 EXTRA, 1 CHANGED" in text, text
    assert "  window prod/w1: 1 event(s) in the index with another content than the bucks hold\n      c1" in text
    assert "content not checked: 2 event(s) whose copies on the bucks differ in content" in text, text
    assert text.splitlines()[-1] == "0 event(s) missing from the index and 0 extra in it, 1 with another content, " \
                                    "in 1 environment(s)."
    doc = json.loads(render(r, as_json=True))
    prod = doc["environments"]["prod"]
    assert doc["ok"] is False and prod["changed"] == 1 and prod["bucks_disagree_content"] == 2
    assert prod["changed_windows"] == [{"window": "prod/w1", "count": 1, "examples": ["c1 | message: ..."]}]
    # Without --content: no content keys, nothing said of content.
    assert "changed" not in json.loads(render(report(), as_json=True))["environments"]["prod"]
    assert "content" not in render(report())


def test_content_asked_but_not_checkable_is_said_and_never_a_pass():
    r = content_report(content_skipped="the sqlite index cannot give its events' content")
    text = render(r)
    assert "CONTENT NOT CHECKED" in text and "content not checked: the sqlite index cannot" in text, text
    assert "No difference" not in text and r.ok is False, text
    assert json.loads(render(r, as_json=True))["environments"]["prod"]["content_skipped"]
