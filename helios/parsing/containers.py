"""Container log records: Docker's json-file driver and the CRI format
(containerd, CRI-O, Kubernetes' /var/log/pods), unwrapped and joined.

A Docker json-file line is ``{"log": "text\\n", "stream": "stdout", "time":
"2024-03-11T08:15:02.118Z"}``: the application's line is ``log``, without its
newline. Docker splits a line longer than 16 KiB into records whose ``log``
does not end in a newline; the record that does ends the line.

A CRI line is ``TIME STREAM TAG text``: ``2024-03-11T08:15:02.118Z stdout F
text``; TAG ``P`` marks a partial record, ``F`` the last (or only) one.

``record`` reads one line of either kind. ``join_lines`` is what the tailer
calls with the raw lines of a container log file in order, carrying its
``pending`` list from call to call: it gives one event per application line
(records split by the runtime joined), ready for ``Chunk.events`` (see its
docstring); ``join_partials`` does the same on records already read.
"""

from __future__ import annotations

import json
import os
import re
from typing import Iterable, NamedTuple

_CRI = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)) (stdout|stderr) ([PF])(?: (.*))?",
                  re.S)


class Record(NamedTuple):
    time: bytes        # the runtime's timestamp, as written (RFC 3339)
    stream: str        # "stdout" or "stderr"
    text: bytes        # the application's bytes, without a final newline
    partial: bool      # more of the same line follows in the next record


def cri(line: bytes) -> Record | None:
    m = _CRI.fullmatch(line.rstrip(b"\r"))
    if m is None:
        return None
    return Record(m[1], m[2].decode(), m[4] or b"", m[3] == b"P")


def docker(line: bytes) -> Record | None:
    if line[:1] != b"{":
        return None
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(obj, dict) and isinstance(obj.get("log"), str) and "stream" in obj):
        return None
    text = obj["log"]
    partial = not text.endswith("\n")
    if not partial:
        text = text[:-1]
    return Record(str(obj.get("time", "")).encode(), str(obj.get("stream", "")),
                  text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8"), partial)


def record(line: bytes) -> Record | None:
    """The container record of a line (Docker json-file or CRI), else None."""
    return docker(line) if line[:1] == b"{" else cri(line)


_DOCKER_KEYS = frozenset(("log", "stream", "time", "attrs"))   # what the json-file driver writes, no more


def looks_like(first_line: bytes) -> bool:
    """Whether a file whose first line is ``first_line`` is a container log
    (Docker json-file or CRI): the tailer then joins its split records
    wherever the file is. One line decides: a runtime writes nothing else
    into its files. A JSON line must hold ``log``, ``stream`` and ``time``
    and nothing but those and ``attrs``, as Docker writes it: an
    application's own JSON lines, which may have a ``log`` or a ``stream``,
    are not taken for records (their lines would be joined)."""
    line = first_line.rstrip(b"\n")
    if line[:1] != b"{":
        return cri(line) is not None
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return (isinstance(obj, dict) and {"log", "stream", "time"} <= obj.keys() <= _DOCKER_KEYS
            and docker(line) is not None)


_CRI_PARTIAL = re.compile(rb" std(?:out|err) P[ \n]")


def nothing_to_join(data: bytes) -> bool:
    """True when ``data`` (complete lines, each ending in a newline) holds no
    record that a later one continues: every Docker record's ``log`` ends in
    its newline, no CRI record is a ``P``. The tailer then passes such a
    chunk on as it is (the parser unwraps each record: the same events as
    joining gives, at the speed of plain lines); otherwise it joins. A few C
    scans of the chunk, no decoding. A doubt (a ``P`` in a text) answers
    False, which only costs the slower way; lines that are no record (a
    banner) change nothing: they are single events either way."""
    # Every Docker record has its log's closing quote right before "stream" (the driver
    # writes log first); a whole one has the escaped newline before that quote.
    records = data.count(b'","stream"') + data.count(b'", "stream"')
    if records and data.count(b'\\n","stream"') + data.count(b'\\n", "stream"') != records:
        return False
    return _CRI_PARTIAL.search(data) is None


MAX_JOINED = 1024 * 1024


def join_partials(pending: list[tuple[int, Record]], items: Iterable[tuple[int, Record]],
                  max_bytes: int = MAX_JOINED) -> tuple[list[tuple[int, Record]], list[tuple[int, Record]]]:
    """Joins partial records into whole lines.

    ``items`` are (offset of the record's line in the file, record) in file
    order; ``pending`` is what the previous call returned as pending (partial
    records whose line has not ended yet: [] at first). Returns (lines,
    pending): each line is (offset of its first record, a Record whose text
    is the joined text, partial False). Pieces of stdout and stderr are
    joined separately, as the runtimes write them. A line that grows past
    ``max_bytes`` is given out as it is, marked partial, so memory is bounded.
    Pure: the same inputs give the same outputs; nothing is dropped.
    """
    out: list[tuple[int, Record]] = []
    open_: dict[str, list[tuple[int, Record]]] = {}
    for offset, rec in pending:
        open_.setdefault(rec.stream, []).append((offset, rec))
    for offset, rec in items:
        pieces = open_.setdefault(rec.stream, [])
        pieces.append((offset, rec))
        size = sum(len(r.text) for _, r in pieces)
        if not rec.partial or size >= max_bytes:
            first_offset, first = pieces[0]
            text = b"".join(r.text for _, r in pieces)
            out.append((first_offset, Record(first.time, rec.stream, text, rec.partial)))
            pieces.clear()
    still = sorted((p for pieces in open_.values() for p in pieces), key=lambda p: p[0])
    return out, still


class Joined(NamedTuple):
    """One event of a container log file, for the tailer's slow path
    (``Chunk.events``): ``head`` is its first raw line (what the parser
    reads: the runtime's time, stream, and the start of the text),
    ``message`` the application's whole line, ``fields`` what the audit and
    a reader need (``line_bytes``: the raw bytes it covers, newlines between
    its records included; ``pieces``)."""

    offset: int
    head: bytes
    message: bytes
    fields: dict


def join_lines(pending: list[tuple[int, bytes, Record]], lines: Iterable[tuple[int, bytes]],
               max_bytes: int = MAX_JOINED) -> tuple[list[Joined], list[tuple[int, bytes, Record]]]:
    """The tailer's entry point: raw lines of a container log file, (offset,
    line without its newline) in file order, to events; records split by
    the runtime are joined. A line that is no container record is an event
    of its own. ``pending`` carries the records of a line not ended yet from
    one call to the next (start with []); their offsets are not to be
    committed until they come back joined. Pure."""
    out: list[Joined] = []
    open_: dict[str, list[tuple[int, bytes, Record]]] = {}
    for item in pending:
        open_.setdefault(item[2].stream, []).append(item)

    def close(pieces: list[tuple[int, bytes, Record]], partial: bool) -> None:
        first_offset, first_line, _ = pieces[0]
        last_offset, last_line, _ = pieces[-1]
        fields = {"line_bytes": last_offset + len(last_line) - first_offset}
        if len(pieces) > 1:
            fields["pieces"] = len(pieces)
        if partial or len(pieces) > 1:
            # Said either way: the parser, reading the head alone, calls it partial.
            fields["partial"] = partial
        out.append(Joined(first_offset, first_line, b"".join(r.text for _, _, r in pieces), fields))

    for offset, line in lines:
        rec = record(line)
        if rec is None:
            out.append(Joined(offset, line, line, {}))
            continue
        pieces = open_.setdefault(rec.stream, [])
        pieces.append((offset, line, rec))
        if not rec.partial or sum(len(r.text) for _, _, r in pieces) >= max_bytes:
            close(pieces, rec.partial)
            pieces.clear()
    still = sorted((p for pieces in open_.values() for p in pieces), key=lambda p: p[0])
    return out, still


def flush_pending(pending: list[tuple[int, bytes, Record]]) -> list[Joined]:
    """The records of lines that never ended (their container stopped, the
    file rotated between pieces, or they waited too long), each stream's
    pieces as one event marked ``partial``. Pure."""
    out: list[Joined] = []
    by_stream: dict[str, list[tuple[int, bytes, Record]]] = {}
    for item in pending:
        by_stream.setdefault(item[2].stream, []).append(item)
    for pieces in by_stream.values():
        first_offset, first_line, _ = pieces[0]
        last_offset, last_line, _ = pieces[-1]
        fields = {"line_bytes": last_offset + len(last_line) - first_offset, "partial": True}
        if len(pieces) > 1:
            fields["pieces"] = len(pieces)
        out.append(Joined(first_offset, first_line, b"".join(r.text for _, _, r in pieces), fields))
    return sorted(out, key=lambda j: j.offset)


# --- where container logs are, and whose they are ---

def pod_fields(path: str, root: str) -> dict | None:
    """Fields of a kubelet log ``ROOT/NAMESPACE_POD_UID/CONTAINER/N.log`` (or
    a rotation of it beside it), None if ``path`` is not one. Namespace and
    pod names cannot hold "_" (DNS names), so the directory splits at its
    first two. Pure."""
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    if len(parts) != 3 or parts[0] in ("..", "."):
        return None
    pod_dir, container, _ = parts
    bits = pod_dir.split("_", 2)
    if len(bits) == 3:
        fields = {"namespace": bits[0], "pod": bits[1], "pod_uid": bits[2]}
    else:
        fields = {"pod": pod_dir}
    fields["container"] = container
    return fields


def docker_fields(path: str, root: str, config: dict | None = None) -> dict | None:
    """Fields of a Docker log ``ROOT/ID/ID-json.log``: the container's name
    from its ``config.v2.json`` (``config``, as read) if there is one, else
    its short id; Kubernetes' labels, when Docker ran it for a kubelet, give
    namespace, pod and pod_uid. None if ``path`` is not one. Pure."""
    rel = os.path.relpath(path, root)
    parts = rel.split(os.sep)
    if len(parts) != 2 or parts[0] in ("..", ".") or "-json.log" not in parts[1]:
        return None
    cid = parts[0]
    fields: dict = {"container_id": cid}
    config = config if isinstance(config, dict) else {}
    name = config.get("Name")
    inner = config.get("Config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    labels = labels if isinstance(labels, dict) else {}
    for key, label in (("namespace", "io.kubernetes.pod.namespace"), ("pod", "io.kubernetes.pod.name"),
                       ("pod_uid", "io.kubernetes.pod.uid")):
        if isinstance(labels.get(label), str):
            fields[key] = labels[label]
    kube_name = labels.get("io.kubernetes.container.name")
    if isinstance(kube_name, str):
        fields["container"] = kube_name
    elif isinstance(name, str) and name.strip("/"):
        fields["container"] = name.strip("/")
    else:
        fields["container"] = cid[:12]
    return fields


class Sources:
    """The container log roots the tailer follows, and the fields of a path
    under them (Docker's config files read once per container)."""

    def __init__(self, pods_root: str, docker_root: str) -> None:
        self.pods_root = os.path.abspath(pods_root) if pods_root else ""
        self.docker_root = os.path.abspath(docker_root) if docker_root else ""
        self.cache: dict[str, dict | None] = {}

    def globs(self) -> list[str]:
        out = []
        if self.pods_root:
            out.append(os.path.join(self.pods_root, "*", "*", "*.log"))
        if self.docker_root:
            out.append(os.path.join(self.docker_root, "*", "*-json.log"))
        return out

    def fields(self, path: str) -> dict | None:
        """namespace, pod, pod_uid, container (a copy: the caller may add to it), None if not a container log."""
        directory = os.path.dirname(path)
        if directory not in self.cache:
            if len(self.cache) > 100_000:
                self.cache.clear()
            apath = os.path.abspath(path)
            found = pod_fields(apath, self.pods_root) if self.pods_root else None
            if found is None and self.docker_root:
                config = None
                if docker_fields(apath, self.docker_root) is not None:
                    try:
                        with open(os.path.join(os.path.dirname(apath), "config.v2.json"), "rb") as f:
                            config = json.loads(f.read(4 * 1024 * 1024))
                    except (OSError, ValueError, RecursionError):
                        config = None
                found = docker_fields(apath, self.docker_root, config)
            self.cache[directory] = found
        found = self.cache[directory]
        return None if found is None else dict(found)
