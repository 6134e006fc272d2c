"""JSON keys of common loggers that name time, host, app and severity,
beyond ECS and OpenTelemetry: what a user of these loggers sees in search."""

from __future__ import annotations

import datetime
import json

from helios.parse import Parser

NOW = 1_800_000_000 * 10**9
T = 1710144902118000000          # 2024-03-11T08:15:02.118Z


def one(obj: dict):
    cols = Parser("auto", default_host="-", tz=datetime.timezone.utc).parse_chunk(
        json.dumps(obj).encode() + b"\n", NOW)
    return cols.times[0], cols.hosts[0], cols.apps[0], cols.severities[0], cols.fields[0] or {}


def test_logstash_logback_encoder_hostname_is_the_host():
    t, host, app, sev, fields = one({"@timestamp": "2024-03-11T08:15:02.118Z", "message": "started",
                                     "logger_name": "com.x.App", "level": "INFO", "HOSTNAME": "web-1"})
    assert (t, host, app, sev) == (T, "web-1", "com.x.App", 6) and "HOSTNAME" not in fields


def test_python_json_logger_asctime_is_the_time():
    t, _, app, sev, _ = one({"asctime": "2024-03-11 08:15:02,118", "name": "worker", "levelname": "WARNING",
                             "message": "slow"})
    assert (t, app, sev) == (T, "worker", 4)


def test_journalctl_json_export_gives_time_host_app_and_priority():
    t, host, app, sev, fields = one({"__REALTIME_TIMESTAMP": "1710144902118000", "_HOSTNAME": "web-1",
                                     "SYSLOG_IDENTIFIER": "sshd", "PRIORITY": "3", "MESSAGE": "error: bad key",
                                     "_PID": "12"})
    assert (t, host, app, sev) == (T, "web-1", "sshd", 3) and fields == {"_PID": "12"}


def test_serilog_properties_and_google_cloud_service_context_name_host_and_app():
    _, host, app, sev, _ = one({"Timestamp": "2024-03-11T08:15:02.118+00:00", "Level": "Warning",
                                "MessageTemplate": "Disk {Disk} full",
                                "Properties": {"Disk": "sda", "SourceContext": "Storage.Monitor",
                                               "MachineName": "web-3"}})
    assert (host, app, sev) == ("web-3", "Storage.Monitor", 4)
    _, _, app, sev, fields = one({"severity": "ERROR", "message": "x", "eventTime": "2024-03-11T08:15:02.118Z",
                                  "serviceContext": {"service": "payments", "version": "1"}})
    assert (app, sev) == ("payments", 3) and fields == {"serviceContext.version": "1"}


def test_fluent_bit_kubernetes_records_name_the_container_as_app_and_an_own_app_key_wins():
    _, host, app, _, _ = one({"date": "2024-03-11T08:15:02.118Z", "level": "error", "message": "boom",
                              "kubernetes": {"pod_name": "web-7d9", "container_name": "nginx", "host": "node-1"}})
    assert (host, app) == ("node-1", "nginx")
    _, _, app, _, _ = one({"message": "x", "app": "shop", "kubernetes": {"container_name": "nginx"}})
    assert app == "shop"
