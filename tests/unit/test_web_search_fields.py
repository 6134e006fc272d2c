"""The search API of the web app finds events by their fields, as the CLI
does, and shows each hit's searchable fields (Flask's test client on a real
sqlite index)."""

from __future__ import annotations

from helios import config
from helios.index import open_index
from helios.model import Event
from helios.web.app import create_app

T = 1_700_006_400 * 10**9


def test_the_search_api_finds_fields_and_says_which_fields_each_hit_has(tmp_path):
    events = [Event(bytes([i]) * 16, T + i, T + i, "web-1", "api", 6, "", None, msg, fields, b"", "prod")
              for i, (msg, fields) in enumerate([
                  (b"level=error user=alice", {"level": "error", "user": "alice"}),
                  (b'{"http":{"status":500}}', {"http": {"status": 500}}),
                  (b"user=alice in the text only", None)])]
    with open_index("sqlite", str(tmp_path / "index")) as index:
        index.load("prod", events)
    cfg = config.load(None, {"porter.index_dir": str(tmp_path / "index"), "history.dir": str(tmp_path / "h")})
    app, _, _ = create_app(cfg.web, cfg)
    client = app.test_client()

    def search(q: str):
        return client.get("/api/search", query_string={"env": "prod", "q": q, "start": str(T // 10**9 - 60),
                                                        "end": str(T // 10**9 + 60)})

    r = search("user:alice").get_json()
    assert [h["message"] for h in r["hits"]] == ["level=error user=alice"]
    assert r["hits"][0]["fields"] == [["level", "error"], ["user", "alice"]]
    assert r["needles"]["fields"] == [["user", ["alice"]]] and r["query"] == "user:alice"
    assert [h["fields"] for h in search("http.status:500").get_json()["hits"]] == [[["http.status", "500"]]]
    bad = search("http..status:500")
    assert bad.status_code == 400 and "nested keys are written a.b.c" in bad.get_json()["error"]
