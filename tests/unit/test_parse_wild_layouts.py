"""helios.parse on common layouts seen in the wild that it used to misread:
Redis, Ruby's Logger, Monolog (Laravel, Symfony), fluentd, Rust's env_logger
and tracing, Tomcat. The lines are real ones, quoted from where each was
found (a project's docs, tests or issues); the few made-up ones say so.

What each gives (README, "Layouts the parser recognises"):
- Redis: time, severity from the level character (as Redis maps it to syslog:
  "." debug, "-" info (verbose), "*" notice, "#" warning); the app stays the
  file's (a Redis line does not name one);
- Ruby's Logger: time, severity, the progname as app (none: the file's app);
- Monolog: time, severity; the channel is not the app (Laravel writes its
  environment there: "production");
- fluentd: the time with its offset, the severity;
- env_logger and tracing: the app is the target as written, a module path
  ("actix_server::builder"), as RUST_LOG filters name it;
- Tomcat: the app is the logger, the class (its method cut off), not the thread.
"""

from __future__ import annotations

import datetime
import random

import pytest

from helios.parse import Parser

UTC = datetime.timezone.utc


def ns(y, mo, d, h=0, mi=0, s=0, frac=0, offset_h=0) -> int:
    tz = datetime.timezone(datetime.timedelta(hours=offset_h))
    return int(datetime.datetime(y, mo, d, h, mi, s, tzinfo=tz).timestamp()) * 10**9 + frac


NOW = ns(2026, 12, 6, 12)
DAPP = "dapp"


def parse(data: bytes, **kw):
    return Parser(default_host="dhost", default_app=DAPP, **kw).parse_chunk(data, NOW)


def one(line: bytes) -> tuple:
    c = parse(line + b"\n")
    return c.times[0], c.hosts[0], c.apps[0], c.severities[0]


# (line, time, app, severity); the host is the default one for all of these.
SAMPLES = [
    # -- Redis ------------------------------------------------------------------
    # Redis 5.0.7 starting: github.com/tanvirkour/redis README.md
    (b"23888:C 06 Apr 2020 18:29:27.385 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
     ns(2020, 4, 6, 18, 29, 27, 385_000_000), DAPP, 4),
    (b"23888:M 06 Apr 2020 18:29:27.387 * Increased maximum number of open files to 10032 "
     b"(it was originally set to 4864).", ns(2020, 4, 6, 18, 29, 27, 387_000_000), DAPP, 5),
    (b"23888:M 06 Apr 2020 18:29:27.394 * Ready to accept connections",
     ns(2020, 4, 6, 18, 29, 27, 394_000_000), DAPP, 5),
    # verbose: github.com/redis/ioredis issue 1366
    (b"15393:M 10 Jun 2021 21:48:27.738 - Accepted 127.0.0.1:57284",
     ns(2021, 6, 10, 21, 48, 27, 738_000_000), DAPP, 6),
    # Redis 3.2.12, no year (the year is inferred, as for BSD syslog): github.com/redashu/wiproredis README.md
    (b"10031:M 07 Sep 10:54:04.957 # Server started, Redis version 3.2.12",
     ns(2026, 9, 7, 10, 54, 4, 957_000_000), DAPP, 4),
    # Redis 2.8, "[pid]": github.com/redis/redis issue 1957
    (b"[53329] 27 Aug 22:41:55.896 # --- CLIENT LIST OUTPUT", ns(2026, 8, 27, 22, 41, 55, 896_000_000), DAPP, 4),
    # debug "." (made up, Redis's shape)
    (b"1:M 11 Mar 2024 10:32:01.123 . 1 clients connected (0 replicas), 1 bytes in use",
     ns(2024, 3, 11, 10, 32, 1, 123_000_000), DAPP, 7),
    # -- Ruby's Logger ----------------------------------------------------------
    # Ruby's reference manual, Logger#error and Logger#progname= (docs.ruby-lang.org/ja/latest/method/Logger/i/error.html)
    (b"E, [2019-03-15T22:54:37.925635 #14878] ERROR -- : error1", ns(2019, 3, 15, 22, 54, 37, 925_635_000), DAPP, 3),
    (b"E, [2019-03-16T03:50:58.062094 #2172] ERROR -- MainApp: error2", ns(2019, 3, 16, 3, 50, 58, 62_094_000),
     "MainApp", 3),
    (b"I, [2019-04-23T00:08:55.585459 #2823]  INFO -- MyProgName: info1", ns(2019, 4, 23, 0, 8, 55, 585_459_000),
     "MyProgName", 6),
    # "ANY" is no severity (made up, Logger::Formatter's shape)
    (b"A, [2024-03-11T10:32:01.123456 #4242]   ANY -- worker: hello", ns(2024, 3, 11, 10, 32, 1, 123_456_000),
     "worker", None),
    # -- Monolog ----------------------------------------------------------------
    # Laravel: github.com/lorisleiva/laravel-deployer tests/Features/LogsTest.php
    (b"[2018-04-17 14:02:53] production.ERROR: Error message", ns(2018, 4, 17, 14, 2, 53), DAPP, 3),
    # Monolog's default LineFormatter (Symfony), with its context (made up, its shape)
    (b'[2020-10-20T19:23:21.284864+02:00] console.ERROR: Error thrown while running command {"command":"x"} []',
     ns(2020, 10, 20, 19, 23, 21, 284_864_000, 2), DAPP, 3),
    # -- fluentd ----------------------------------------------------------------
    # github.com/fluent/fluentd pull request 1386
    (b'2016-12-22 20:02:15 +0900 [info]: reading config file path="example/in_forward_workers.conf"',
     ns(2016, 12, 22, 20, 2, 15, 0, 9), DAPP, 6),
    # github.com/oss-gate/workshop issue 1664
    (b"2023-09-30 11:16:17 +0900 [trace]: #0 fluent/log.rb:319:trace: registered parser plugin 'in_http'",
     ns(2023, 9, 30, 11, 16, 17, 0, 9), DAPP, 7),
    # github.com/Azure/fluentd-plugin-mdsd issue 68
    (b'2020-07-10 07:45:18 +0000 [info]: starting fluentd-1.9.2 pid=7 ruby="2.4.9"',
     ns(2020, 7, 10, 7, 45, 18), DAPP, 6),
    # warn, with a fraction (made up, fluentd's shape with time_format %Y-%m-%d %H:%M:%S.%N %z)
    (b"2024-03-11 10:32:01.5 -0130 [warn]: #0 buffer flush took longer time than slow_flush_log_threshold",
     ns(2024, 3, 11, 12, 2, 1, 500_000_000), DAPP, 4),
    # -- Rust: env_logger and tracing -------------------------------------------
    # env_logger's crate documentation (src/lib.rs; docs.rs/env_logger)
    (b"[2017-11-09T02:12:24Z ERROR main] this is printed by default", ns(2017, 11, 9, 2, 12, 24), "main", 3),
    (b"[2017-11-09T02:12:24Z INFO main] the answer was: 12", ns(2017, 11, 9, 2, 12, 24), "main", 6),
    # actix-web under env_logger (qdrant's README, and many more)
    (b"[2021-02-05T00:08:51Z INFO  actix_server::builder] Starting 12 workers", ns(2021, 2, 5, 0, 8, 51),
     "actix_server::builder", 6),
    # tracing-subscriber's Full format: github.com/tokio-rs/tracing tracing-subscriber/src/fmt/format/mod.rs
    (b"2022-02-15T18:40:14.289898Z  INFO fmt: preparing to shave yaks number_of_yaks=3",
     ns(2022, 2, 15, 18, 40, 14, 289_898_000), "fmt", 6),
    (b"2022-02-15T18:40:14.289974Z  INFO shaving_yaks{yaks=3}: fmt::yak_shave: shaving yaks",
     ns(2022, 2, 15, 18, 40, 14, 289_974_000), "fmt::yak_shave", 6),
    (b"2024-03-11T10:32:01.123Z  WARN my_crate::db: slow query", ns(2024, 3, 11, 10, 32, 1, 123_000_000),
     "my_crate::db", 4),
    # -- Tomcat (JULI's OneLineFormatter) ---------------------------------------
    # github.com/b3log/solo issue 12337
    (b"17-Aug-2017 20:36:30.502 SEVERE [main] org.apache.catalina.core.StandardContext.startInternal One or more "
     b"listeners failed to start. Full details will be found in the appropriate container log file",
     ns(2017, 8, 17, 20, 36, 30, 502_000_000), "org.apache.catalina.core.StandardContext", 3),
    (b"17-Aug-2017 20:39:30.422 WARNING [main] org.apache.catalina.util.SessionIdGeneratorBase.createSecureRandom "
     b"Creation of SecureRandom instance for session ID generation using [SHA1PRNG] took [179,920] milliseconds.",
     ns(2017, 8, 17, 20, 39, 30, 422_000_000), "org.apache.catalina.util.SessionIdGeneratorBase", 4),
    # github.com/FusionAuth/fusionauth-issues issue 408
    (b"16-Dec-2019 16:32:50.739 INFO [main] org.apache.catalina.startup.Catalina.start Server startup in 6407 ms",
     ns(2019, 12, 16, 16, 32, 50, 739_000_000), "org.apache.catalina.startup.Catalina", 6),
    # github.com/elastic/apm-agent-java pull request 1241
    (b"17-Jun-2020 10:49:35.442 INFO [localhost-startStop-1] org.apache.myfaces.webapp.StartupServletContextListener"
     b".contextInitialized MyFaces Core has started, it took [1180] ms.",
     ns(2020, 6, 17, 10, 49, 35, 442_000_000), "org.apache.myfaces.webapp.StartupServletContextListener", 6),
]


@pytest.mark.parametrize("line, time, app, severity", SAMPLES, ids=[s[0][:40].decode() for s in SAMPLES])
def test_wild_layout_gives_time_severity_and_app(line, time, app, severity):
    assert one(line) == (time, "dhost", app, severity)


def test_wild_layouts_mixed_in_one_chunk_in_any_order_parse_as_each_alone():
    # The passes are told apart by their first bytes: which pass reads a line
    # (and which goes first) changes nothing. With BSD syslog and glog lines among them.
    lines = [s[0] for s in SAMPLES] + [
        b"Dec  5 17:42:15 web-1 sshd[42]: Accepted publickey for root",
        b"I0311 08:15:02.118123    1234 main.go:12] started",
        b"2024-03-11 08:15:02,118 ERROR [main] org.example.Service: failed",
    ]
    alone = {line: one(line) for line in lines}
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(lines)
        c = parse(b"\n".join(lines) + b"\n")
        got = {line: (c.times[i], c.hosts[i], c.apps[i], c.severities[i]) for i, line in enumerate(lines)}
        assert got == alone


@pytest.mark.parametrize("line", [
    # Redis's banner and signal handler lines (tanvirkour/redis README.md): no header
    b"           _.-``__ ''-._",
    b"23888:signal-handler (1586177983) Received SIGINT scheduling shutdown...",
    # near misses: no level character, no role, a role Redis has not, a bad month
    b"1:M 11 Mar 2024 10:32:01.123 Ready to accept connections",
    b"1 11 Mar 2024 10:32:01.123 * Ready",
    b"1:Q 11 Mar 2024 10:32:01.123 * Ready",
    b"1:M 11 Mxr 2024 10:32:01.123 * Ready",
    # Ruby's Logger: no pid, no " -- ", a lower-case letter
    b"E, [2019-03-15T22:54:37.925635] ERROR -- : error1",
    b"E, [2019-03-15T22:54:37.925635 #14878] ERROR error1",
    b"e, [2019-03-15T22:54:37.925635 #14878] ERROR -- : error1",
    # Laravel's stack trace lines
    b"[stacktrace]",
    b"#0 /app/vendor/laravel/framework/src/Illuminate/Pipeline/Pipeline.php(167): handle()",
])
def test_near_misses_are_left_unparsed(line):
    t, host, app, severity = one(line)
    assert (t, host, app, severity) == (NOW, "dhost", DAPP, None)


def test_redis_stamp_that_is_no_date_keeps_the_read_time_and_loses_nothing():
    c = parse(b"1:M 31 Feb 2024 10:32:01.123 # impossible day\n1:M 11 Mar 2024 10:32:01.123 * ok\n")
    assert c.times == [NOW, ns(2024, 3, 11, 10, 32, 1, 123_000_000)]
    assert c.severities == [4, 5]
    assert c.messages[0] == b"1:M 31 Feb 2024 10:32:01.123 # impossible day"


def test_ruby_progname_with_a_colon_is_cut_at_the_first_colon_and_space():
    # Logger writes "progname: msg"; a progname of "Rails::App" keeps its "::".
    assert one(b"W, [2024-03-11T10:32:01.000001 #1]  WARN -- Rails::App: low disk: 3%")[2:] == ("Rails::App", 4)


def test_monolog_channel_is_not_the_app_and_its_level_needs_the_upper_case_name():
    assert one(b"[2018-04-17 14:02:53] local.WARNING: careful")[2:] == (DAPP, 4)
    # "production.Error:" is not Monolog's (its names are upper case): read as before, no severity
    assert one(b"[2018-04-17 14:02:53] production.Error: x")[3] is None


def test_java_logger_after_a_thread_needs_a_package_name():
    # a message that starts with a word after "[thread]" is not a logger
    assert one(b"11-Mar-2024 10:32:01.123 INFO [main] Starting service [Catalina]")[2:] == (DAPP, 6)
    # nor is a dotted word after a level in brackets (no thread before it)
    assert one(b"2024-03-11 10:32:01 [ERROR] www.example.com unreachable")[2:] == (DAPP, 3)
    # nor a dotted name with no class in it (a package, then a class in upper case, then maybe a method)
    assert one(b"2024-03-11 10:32:01 ERROR [main] www.example.com unreachable")[2:] == (DAPP, 3)
    assert one(b"2024-03-11 10:32:01 ERROR [main] o.s.b.SpringApplication failed")[2:] == ("o.s.b.SpringApplication", 3)
    # a class with no method keeps its name
    assert one(b"11-Mar-2024 10:32:01.123 INFO [main] org.example.web.Startup done")[2:] == (
        "org.example.web.Startup", 6)


def test_fluentd_offset_is_the_time_zone_even_when_the_parser_has_another():
    import zoneinfo
    c = Parser(tz=zoneinfo.ZoneInfo("America/New_York")).parse_chunk(
        b"2020-07-10 07:45:18 +0000 [info]: starting fluentd-1.9.2 pid=7\n", NOW)
    assert c.times[0] == ns(2020, 7, 10, 7, 45, 18)


def test_every_cut_of_every_sample_parses_in_a_chunk_as_alone_and_keeps_its_line():
    # A line cut anywhere (a partial write, a truncated copy) is still one line:
    # no pattern reads across a line end, and nothing is lost or moved.
    cuts = sorted({s[0][:k] for s in SAMPLES for k in range(1, len(s[0]) + 1)})
    c = parse(b"\n".join(cuts) + b"\n")
    assert c.messages == cuts
    p = Parser(default_host="dhost", default_app=DAPP)
    for i, line in enumerate(cuts):
        alone = p.parse_chunk(line + b"\n", NOW)
        assert (alone.times[0], alone.hosts[0], alone.apps[0], alone.severities[0]) == (
            c.times[i], c.hosts[i], c.apps[i], c.severities[i]), line


@pytest.mark.parametrize("role", [b"X", b"C", b"S", b"M"])
def test_every_redis_role_is_read_alone_in_its_chunk(role):
    # (the pass looks for a mark of its layouts in the chunk before it reads it)
    assert one(b"7:" + role + b" 11 Mar 2024 10:32:01.123 # hello") == (
        ns(2024, 3, 11, 10, 32, 1, 123_000_000), "dhost", DAPP, 4)


def test_wild_layouts_inside_container_records_give_their_severity_and_app():
    # A Redis or a Rust service in a container: the record's text is read as a line of its own
    # (the runtime's time wins: it is exact and has its zone).
    docker = (b'{"log":"1:M 11 Mar 2024 10:32:01.123 # WARNING overcommit_memory is set to 0!\\n",'
              b'"stream":"stdout","time":"2024-03-11T10:32:01.125Z"}')
    cri = b"2024-03-11T10:32:01.130Z stderr F 2024-03-11T10:32:01.123Z  WARN my_crate::db: slow query"
    c = parse(docker + b"\n" + cri + b"\n")
    assert c.times == [ns(2024, 3, 11, 10, 32, 1, 125_000_000), ns(2024, 3, 11, 10, 32, 1, 130_000_000)]
    assert (c.apps, c.severities) == ([DAPP, "my_crate::db"], [4, 4])
    assert c.messages[1] == b"2024-03-11T10:32:01.123Z  WARN my_crate::db: slow query"
