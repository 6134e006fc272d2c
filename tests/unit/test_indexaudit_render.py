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
