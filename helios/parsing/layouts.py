"""The regular expressions of the parser's batch passes (see ``helios.parse``).

Every pattern has the shape ``^(?:HEADER)?.*`` and none may consume a ``\n``
inside its header: each must match each line of a chunk exactly once, so
that a ``findall`` over the chunk gives one row per line. Captured fields
are bounded (a longer host is cut) so that no cache key is huge, and
repetitions are possessive or atomic where a line that does not fit could
otherwise backtrack for long.
"""

from __future__ import annotations

import re

from helios.parsing import severity as sev

# (Spelled out: a case-insensitive group costs the BSD pass half its speed.)
MON = (rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
        rb"|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)")
ISO_TS = rb"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:[.,]\d{1,9})?(?:[Zz]|[+-]\d\d(?::?\d\d)?| UTC| GMT)?"
LEVEL = sev.LEVEL_WORD


def _branches(pattern: bytes) -> bytes:
    """``(?:X)?`` written as ``(?:X|)``: the same language and the same
    match (a greedy ``?`` tries X first, then nothing, as the alternation
    does), but sre runs an optional group that is more than one character
    wide through its general REPEAT, which allocates a context at every
    try, and an alternation through a plain BRANCH: the BSD fast pass is
    a quarter faster so. Lazy (``??``) and possessive (``?+``) groups, and
    everything inside ``[...]``, are left as they are."""
    stack: list[bool] = []              # per open paren: is it "(?:"
    edits = []                          # indexes of the ")" of a "(?:X)?"
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i:i + 1]
        if c == b"\\":
            i += 2
            continue
        if c == b"[":                   # a class: "]" first (or after "^") is a literal
            i += 1
            i += pattern[i:i + 1] == b"^"
            i += pattern[i:i + 1] == b"]"
            while i < n and pattern[i:i + 1] != b"]":
                i += 2 if pattern[i:i + 1] == b"\\" else 1
        elif c == b"(":
            stack.append(pattern[i:i + 3] == b"(?:")
        elif c == b")":
            if stack.pop() and pattern[i + 1:i + 2] == b"?" and pattern[i + 2:i + 3] not in (b"?", b"+"):
                edits.append(i)
        i += 1
    for i in reversed(edits):
        pattern = pattern[:i] + b"|)" + pattern[i + 2:]
    return pattern


def _compile(pattern: bytes) -> re.Pattern:
    """A pass pattern: per line (``re.M``), optional groups as alternations (see ``_branches``)."""
    return re.compile(_branches(pattern), re.M)


# The patterns of the batch passes. None may consume a "\n" inside its header:
# each must match each line exactly once (see the module docstring). Captured
# fields are bounded (a longer host is cut) so that no cache key is huge.

# BSD syslog: "<PRI>Mmm dd hh:mm:ss host tag[pid]: msg", each part optional
# but the time. The host is left out when the first word is already a tag
# ("dhcpd[4305]:"), or has characters no host name has. The tag may hold
# one space ("syslogd 1.4.1: restart."), dots, slashes and parentheses but not
# ":" or "["; it ends in "[pid]:", "[pid] (sub):" or ":". As in rsyslog and
# Vector, a year after the time is the year ("Aug 10 22:18:24 2009 host": what
# rsyslog's detect.YearAfterTimestamp reads), Cisco IOS's "123: *Mar 11
# 08:15:02.118: %SYS-5-CONFIG_I: ..." is read, and a word after the host that ends in none of these ("host tag msg",
# "host tag[12] msg") is the tag too, if it looks like a program name.
# A tag: a word, or two ("syslogd 1.4.1:", "-- root[2421]:"); more words
# before a ":" are a message ("tag This msg contains: x" has the tag "tag").
TAG = rb"[^ :\[\n][^ :\[\n]{0,47}(?: [^ :\[\n]{1,24})?"
PID_SUB = rb"(?:\[[^\]\n]{0,32}\])?(?: \([^)\n]{0,64}\))?:"
# The fast pass takes only the canonical layout, "<PRI>Mmm dd hh:mm:ss host
# tag[pid]: msg" with every part but PRI and pid: most lines, at the speed of
# a simple pattern. Every other line is left to the loose pass, which starts
# after all the others and gives the same answer on a canonical line, so
# which one read a line changes nothing.
# Its one group is the header from stamp to tag: a findall of one group
# gives a list of bytes (no tuple a line), and the header ("Dec  5 17:42:15
# web-1 sshd") goes through one cache to its time, host and app
# (helios.parse). On a miss, it is cut into the stamp (15 bytes) and " host
# tag", which RFC3164_FAST_NAMES splits: the host (a run of non-spaces, cut
# at 255) and the tag. RFC3164_FAST_PRI is the same with the PRI as a group
# of its own before it (kept out of the header: it would make a header new
# for each severity); it runs on the chunks where a line starts with "<".
_FAST_HEADER = (
    rb"((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d"
    rb" +(?!20\d\d )\S{1,255}+\S*+(?<![:\]]) +(?:" + TAG + rb"))(?:\[[^\]\n]{0,32}\])?:")
RFC3164_FAST = _compile(rb"^(?:" + _FAST_HEADER + rb")?.*")
RFC3164_FAST_PRI = _compile(rb"^(?:(?:<(\d{1,3})>)?" + _FAST_HEADER + rb")?.*")
RFC3164_FAST_NAMES = re.compile(rb" +(\S{1,255})\S* +(.*)", re.S)


try:    # The same two scans in C (setup.py builds it; optional): a third of the cost of a BSD line.
    from helios import _speedups
except ImportError:     # pragma: no cover (a build without a C compiler)
    _speedups = None


def speedups_missing() -> str | None:
    """Why the C scans are not there (a sentence for a service's log), or None."""
    if _speedups is not None:
        return None
    return ("helios/_speedups.c is not built (no C compiler or Python headers when Helios was installed): "
            "BSD syslog is parsed by its Python twin, about half as fast (install gcc and python3-dev, "
            "then pip install -e . again)")


def fast_heads(text: bytes, n: int) -> list[bytes]:
    """The first ``n`` of ``RFC3164_FAST.findall(text)``: each line's header, or b""."""
    if _speedups is not None:
        heads: list[bytes] = _speedups.bsd_heads(text, n)
        return heads
    heads = RFC3164_FAST.findall(text)
    del heads[n:]
    return heads


def longest_line(text: bytes) -> int:
    """The length of the longest line of ``text`` (without its b"\\n")."""
    if _speedups is not None:
        longest: int = _speedups.longest_line(text)
        return longest
    return max(map(len, text.split(b"\n")))


def fast_pri_heads(text: bytes, n: int) -> tuple[list[bytes], list[bytes]]:
    """The first ``n`` of ``RFC3164_FAST_PRI.findall(text)`` as two lists:
    (each line's PRI, each line's header), b"" where there is none."""
    if _speedups is not None:
        pris, heads = _speedups.bsd_pri_heads(text, n)
        return pris, heads
    rows = RFC3164_FAST_PRI.findall(text)
    del rows[n:]
    return [r[0] for r in rows], [r[1] for r in rows]
RFC3164 = _compile(
    rb"^(?:(?:<(\d{1,3})>)? ?(?:\d{1,10}: [*.]?)?(" + MON + rb" {1,2}\d{1,2}(?: \d{4})? \d\d:\d\d:\d\d(?:\.\d{1,9})?(?: 20\d\d(?= ))?"
    rb"|(?<=>)" + ISO_TS
    + rb"):?(?: +(?:([^\s:\[\]]{1,48})" + PID_SUB + rb"(?= |$)|(\S{1,255})\S*(?= |$)"
    rb"(?: +(?:(" + TAG + rb")" + PID_SUB + rb"|([A-Za-z_%/][\w.()/%-]{0,47})(?:\[[^\]\n]{0,32}\])?"
    rb"(?= |$)))?))?)?.*")
# RFC 5424: "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] msg" ("-" is nil).
# (Spaces in SD and before an app's " name - " are [^\S\n]: \s would take a line end.)
# The atomic groups keep a line with too few fields from backtracking through
# every way of cutting each one.
SD = rb'(?:-|(?:\[[^\]\s"]{1,32}(?:[^\S\n]+[^\s\]="]{1,32}=[^\S\n]*"(?:[^"\\\n]|\\.)*")*[^\S\n]*\])+)'
RFC5424 = _compile(
    rb"^(?:<(\d{1,3})>\d{1,2} (?>(\S{1,40})\S*) (?>(\S{1,255})\S*) (?>(\S{1,48})\S*)"
    rb"(?: (?>(\S{1,128})\S*) (?>(\S{1,32})\S*)(?: (" + SD + rb"))?)?)?.*")
# App logs: a timestamp first (ISO 8601, bracketed or not, the layouts of
# helios.parsing.timestamps, a time of day with ms: logback's default, epoch
# seconds with a fraction: Squid), then one of: a CRI container record ("stdout
# F"); a level (after " ", " - ", ", ", "|", in brackets) with what app logs
# put around it (a pid or "[thread]" before it, "name - " of Python's logging, a column of Windows
# CBS, Spring's "--- [thread]", "[thread:Component@line]", a logger name
# ending in ":", " -" or a tab (zap)); or, for an RFC 3339 time, BSD syslog's "host tag:";
# or "|Component|" and "] program - "; also Monolog's "] channel.LEVEL:",
# fluentd's " +0000" after the time, Rust's targets ("[time LEVEL my_crate::db]",
# tracing's "LEVEL span{a=1}: my_crate::db:") and Tomcat's "LEVEL [thread]
# org.pkg.Class.method msg" (the class is the app). A level may also come before the time,
# and a file name before it all ("nova-api.log.1 2017-05-16 ...", as grep -H
# or a concatenation of files writes).
APP_TIME = (
    rb"\[?(?:" + ISO_TS + rb"(?: [+-]\d{4})?|\d{4}/\d\d?/\d\d?[ T]\d\d?:\d\d:\d\d(?:[.,]\d{1,9})?"
    rb"|\d\d/\d\d/\d\d \d\d:\d\d:\d\d(?:[.,]\d{1,9})?|\d{6} \d{6}|\d{8}-\d\d?:\d\d?:\d\d?(?::\d{1,3})?"
    rb"|\d\d?-" + MON + rb"-\d{4} \d\d:\d\d:\d\d(?:[.,]\d{1,9})?|\d\d\.\d\d \d\d:\d\d:\d\d"
    rb"|\d\d:\d\d:\d\d[.,]\d{3}|1\d{9}\.\d{3,9})\]?(?![\d:])")
# A bracket (one level of nesting: "[QuorumPeer[myid=1]/...:Component@774]"),
# taken whole and possessively (linear); its "Component@line", or a dotted
# logger name ("[o.e.n.Node   ]", Elasticsearch), is read by a cache. Only the
# first bracket after the level is captured.
BRACKET = rb"\[((?:[^\[\]\n]|\[[^\[\]\n]{0,64}\]){0,200}+)\][ \t]*(?:-[ \t]*)?"
BRACKET_MORE = rb"\[(?:[^\[\]\n]|\[[^\[\]\n]{0,64}\]){0,200}+\][ \t]*(?:-[ \t]*)?"  # (not captured)
# Monolog's LineFormatter (Laravel, Symfony): "[time] channel.LEVEL: msg". The
# channel is not the app (Laravel writes its environment there: "production").
MONOLOG_LEVEL = rb"DEBUG|INFO|NOTICE|WARNING|ERROR|CRITICAL|ALERT|EMERGENCY"
# A logger name; a Rust target (env_logger, tracing) is a module path: "my_crate::db".
# (Possessive: no terminator after it starts with a character of its own, so
# giving characters back never finds one; a line that has none fails at once.)
LOGGER = rb"[\w.$/<>-]{1,128}+(?:::[\w.$<>-]{1,64}+){0,16}+"
# tracing's spans before the target, each with its fields: "shave{yaks=3}:inner: my_crate::db: msg".
SPANS = rb"[\w-]{1,64}\{[^{}\n]{0,512}\}(?::[\w-]{1,64}(?:\{[^{}\n]{0,512}\})?){0,8}+:[ \t]+"
# A Java class (and maybe its method) after "[thread] ", then a space: Tomcat's
# OneLineFormatter, "SEVERE [main] org.apache.catalina.startup.Catalina.start msg".
# A package in lower case, then a class in upper case: "www.example.com" is none.
# (Taken only after a thread: helios.parse._run_app.)
JAVA_NAME = rb"[a-z][\w$]{0,63}+(?:\.[a-z_$][\w$]{0,63}+){1,24}+\.[A-Z][\w$]{0,127}+(?:\.[a-z_$<][\w$<>]{0,63}+)?"
APP = _compile(
    rb"^(?:(?:[\w.-]{1,64}\.log[\w.:-]{0,40}[ :])?(?:\[?(" + LEVEL + rb")\]?[ \t]+)?(" + APP_TIME + rb")(?:"
    rb" (stdout|stderr) ([PF])(?= |$)"
    rb"|(?<=\])[ \t]+[\w.-]{1,64}\.(" + MONOLOG_LEVEL + rb"):(?=[ \t]|$)"
    rb"|(?:[ \t]*[-,|:][ \t]*|[ \t]+|(?<=\]))(?:\d{1,10}[ \t]+)?(?:\[(?!" + LEVEL + rb" ?\])[^\]\n]{0,64}\][ \t]+)?"
    rb"(?:([\w.$-]{1,64})[ \t]+-[ \t]+)?\[?(" + LEVEL + rb")(?: ?\])?"
    rb"(?: {2,}([A-Za-z][\w.-]{0,31})(?= {2,})"
    rb"|(?:[ \t]+\d{1,10}[ \t]+---)?[ \t]*(?:[-|][ \t]*)?(?:" + BRACKET + rb"(?:" + BRACKET_MORE + rb"){0,2})?"
    rb"(?:" + SPANS + rb")?"
    rb"(?:(" + LOGGER + rb")(?:[ \t]*:(?=[ \t]|$)|[ \t]+-[ \t]|[ \t]+\[|\t(?=\S)|\](?=[ \t]|$))"
    rb"|(?<=\] )(" + JAVA_NAME + rb")[ \t]+(?=\S))?)?"
    rb"| (?!" + LEVEL + rb")(?:([\w.:@/%-]{1,255}) )?([^\s:\[\]]{1,48})(?:\[[^\]\n]{0,32}\])?"
    rb"(?: \([^)\n]{0,64}\))?:(?= |$)"
    rb"|\|([\w.$-]{1,64})\||[^\S\n]([\w.$-]{1,64}(?: \*\d{1,3})?) - )?)?.*")
# The fast app pass: an ISO time, a word (a level, checked by its cache), an
# optional "[thread]" or "[thread:Component@line]" and an optional logger
# ending in ":" or " - ". A line is taken only when its word is a level and
# it names an app; every other line is left to the loose pass (APP).
APP_FAST = _compile(
    rb"^(?:(" + ISO_TS + rb")(?:[ \t]*[-,|][ \t]*|[ \t]+)\[?([A-Za-z]{1,13})\]?"
    rb"(?:[ \t]+\[((?:[^\[\]\n]|\[[^\[\]\n]{0,64}\]){0,200}+)\])?"
    rb"(?:[ \t]+(?:-[ \t]+)?([\w.$/<>-]{1,128})(?:[ \t]*:(?=[ \t]|$)|[ \t]+-[ \t]))?)?.*")
# App logs whose time is not first, told apart by their first bytes:
# Redis, "PID:ROLE DD Mon [YYYY] HH:MM:SS.mmm LEVEL msg" (the role X, C, S or M;
# the level one character, REDIS_SEVERITY; older Redis writes no year, and
# Redis 2 "[PID]" for "PID:ROLE"), and Ruby's Logger, "L, [ISO-TIME #PID] LEVEL
# -- progname: msg" (the progname, the app, may be empty).
APP_OTHER = _compile(
    rb"^(?:(?:\d{1,10}:[XCSM]|\[\d{1,10}\]) (\d\d? " + MON + rb"(?: \d{4})? \d\d:\d\d:\d\d(?:\.\d{1,6})?) ([.*#-]) "
    rb"|[DIWEFA], \[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?) ?#\d{1,10}\] {1,5}([A-Z]{1,5}) -- "
    rb"([^\n]{0,128}?):(?= |$))?.*")
# Every line APP_OTHER reads holds one of these (a scan for them is much
# cheaper than the findall over text it reads nothing of: stack traces...).
APP_OTHER_MARKS = (b":M ", b":S ", b":C ", b":X ", b"] ", b", [")
# Redis's level characters, as Redis maps them to syslog (server.c: syslogLevelMap):
# "." debug, "-" verbose (info), "*" notice, "#" warning.
REDIS_SEVERITY = {b".": 7, b"-": 6, b"*": 5, b"#": 4}
# Apache httpd error log: "[Sun Dec 04 04:47:44 2005] [notice] msg" (2.4: "[core:notice]").
APACHE = _compile(
    rb"^(?:\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (" + MON + rb" [ \d]\d \d\d:\d\d:\d\d(?:\.\d{1,9})? \d{4})\]"
    rb" \[(?:\w{1,32}:)?(\w{1,16})\])?.*")
# Android logcat threadtime: "03-17 16:13:38.811  1702  2395 D Tag: msg".
LOGCAT = _compile(
    rb"^(?:(\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) +\d+ +\d+ ([VDIWEFA]) ([^:\n]{0,64}?) ?:)?.*")
# Web server access logs (NCSA common and combined: Apache, nginx):
# 'CLIENT IDENT USER [11/Mar/2024:08:15:02 +0000] "GET / HTTP/1.1" 200 612 ...'.
# The time, and the status as a field; the client is not the host.
ACCESS = _compile(
    rb'^(?:[^\s\[\]"]{1,255} \S{1,255} \S{1,255} \[(\d\d/' + MON + rb'/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]'
    rb' "[^"\n]{0,8192}" (\d{3}) )?.*')
# glog (Kubernetes components, many Go and C++ programs):
# "I0311 08:15:02.118123    1234 file.go:12] msg": severity letter, MMdd, time.
GLOG = _compile(rb"^(?:([IWEF])(\d{4} \d\d:\d\d:\d\d\.\d{6}) +\d+ [^:\]\n]{1,128}:\d+\] )?.*")
GLOG_SEVERITY = {b"I": 6, b"W": 4, b"E": 3, b"F": 2}

LOGCAT_SEVERITY = {b"V": 7, b"D": 7, b"I": 6, b"W": 4, b"E": 3, b"F": 2, b"A": 0}

# What may come before such a key (else it is another key: "xlevel=", "log_level=").
KEY_BEFORE = frozenset(b" \t,;([{.>\n")
_NOT_BEFORE = rb"[^ \t,;(\[{.>\n]"
# "level=", "lvl=" or "severity=" (at the start of the text or after one of
# KEY_BEFORE) and its word. It starts with the literal "=": sre then finds
# candidates with a fast scan, several times faster than an alternation of
# the keys first; the lookbehinds check the key and what comes before it. The
# first one, "[ly]=", turns away most other keys' "=" at once (about 15 % less
# scan time over the bench's lines; the same matches over loghub).
KV_LEVEL_RX = re.compile(
    rb'=(?<=[ly]=)(?:(?<=level=)(?<!' + _NOT_BEFORE + rb'level=)|(?<=lvl=)(?<!' + _NOT_BEFORE + rb'lvl=)'
    rb'|(?<=severity=)(?<!' + _NOT_BEFORE + rb'severity=))"?([A-Za-z]{1,16})')
