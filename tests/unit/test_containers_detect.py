"""Which followed files the tailer treats as container logs outside the
--kubernetes roots: told by the first line, or by a [[tailer.parse]] format."""

from __future__ import annotations

import json

from helios.parsing.containers import looks_like
from helios.parsing.profiles import Profiles, check_table


def test_a_docker_or_cri_first_line_says_container_log_and_an_app_json_or_text_line_does_not():
    assert looks_like(json.dumps({"log": "hi\n", "stream": "stdout", "time": "2024-03-11T08:15:02Z"}).encode())
    assert looks_like(b"2024-03-11T08:15:02.118000000Z stderr P a piece")
    assert looks_like(b"2024-03-11T08:15:02+01:00 stdout F \r")
    assert not looks_like(b'{"log": "hi", "level": "info"}')           # an app's JSON: no stream
    assert not looks_like(b'{"log": 1, "stream": "stdout"}')
    assert not looks_like(b"2024-03-11T08:15:02Z INFO started")
    assert not looks_like(b"")


def test_a_table_format_docker_or_cri_joins_auto_decides_and_another_format_never_joins():
    profiles = Profiles(tables=[{"paths": ["/srv/ctr/*"], "format": "docker"},
                                {"paths": ["/srv/cri/*"], "format": "cri"},
                                {"paths": ["/srv/raw/*"], "format": "raw"},
                                {"paths": ["/srv/tz/*"], "timezone": "UTC"}])
    assert profiles.container_format("/srv/ctr/a.log") == "join"
    assert profiles.container_format("/srv/cri/a.log.1") == "join"          # a rotation, by its base name
    assert profiles.container_format("/srv/raw/a.log") == ""
    assert profiles.container_format("/srv/tz/a.log") == "auto"
    assert profiles.container_format("/elsewhere.log") == "auto"
    assert Profiles("rfc5424").container_format("/elsewhere.log") == ""
    assert profiles.parser("/srv/ctr/a.log").fmt == "auto"                  # records read by the auto parser


def test_the_config_accepts_format_docker_and_cri_and_names_them_when_a_format_is_wrong():
    assert check_table({"paths": ["/x/*"], "format": "cri"}) is None
    assert check_table({"paths": ["/x/*"], "format": "docker"}) is None
    assert "auto, rfc3164, rfc5424, iso8601, json, raw, docker, cri" in check_table({"paths": ["/x/*"], "format": "k8s"})
