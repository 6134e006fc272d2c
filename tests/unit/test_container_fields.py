"""Container logs, pure parts: whose a path is (kubelet and Docker layouts),
and the joiner of partial records, also when a line never ends."""

from __future__ import annotations

import json

from helios.parsing import containers as c

UID = "0b1e5c3a-1111-2222-3333-444455556666"


def test_a_kubelet_path_gives_namespace_pod_uid_and_container_and_so_do_its_rotations():
    root = "/var/log/pods"
    want = {"namespace": "kube-system", "pod": "coredns-5d78c9869d-abcde", "pod_uid": UID, "container": "coredns"}
    for name in ("0.log", "0.log.20240311-081502", "0.log.20240311-081502.gz"):
        assert c.pod_fields(f"{root}/kube-system_coredns-5d78c9869d-abcde_{UID}/coredns/{name}", root) == want
    assert c.pod_fields("/var/log/pods/odd/c/0.log", root) == {"pod": "odd", "container": "c"}
    assert c.pod_fields("/var/log/other/x_y_z/c/0.log", root) is None
    assert c.pod_fields(f"{root}/ns_p_u/0.log", root) is None


def test_a_docker_path_is_named_by_its_config_then_by_kubernetes_labels_else_by_its_id():
    root = "/var/lib/docker/containers"
    cid = "ab" * 32
    path = f"{root}/{cid}/{cid}-json.log"
    assert c.docker_fields(path, root) == {"container_id": cid, "container": cid[:12]}
    assert c.docker_fields(path, root, {"Name": "/db"})["container"] == "db"
    labels = {"io.kubernetes.pod.namespace": "shop", "io.kubernetes.pod.name": "web-1",
              "io.kubernetes.pod.uid": UID, "io.kubernetes.container.name": "nginx"}
    got = c.docker_fields(path + ".1", root, {"Name": "/k8s_nginx_web-1", "Config": {"Labels": labels}})
    assert got == {"container_id": cid, "namespace": "shop", "pod": "web-1", "pod_uid": UID, "container": "nginx"}
    assert c.docker_fields(f"{root}/{cid}/config.v2.json", root) is None
    assert c.docker_fields(path, root, {"Name": 7, "Config": "junk"})["container"] == cid[:12]


def test_sources_read_dockers_config_once_and_survive_a_broken_one(tmp_path):
    pods, docker = tmp_path / "pods", tmp_path / "docker"
    (docker / "c1").mkdir(parents=True)
    (docker / "c1" / "config.v2.json").write_text(json.dumps({"Name": "/api"}))
    (docker / "c2").mkdir()
    (docker / "c2" / "config.v2.json").write_bytes(b"{not json")
    s = c.Sources(str(pods), str(docker))
    assert s.fields(str(docker / "c1" / "c1-json.log"))["container"] == "api"
    assert s.fields(str(docker / "c2" / "c2-json.log"))["container"] == "c2"
    assert s.fields(str(tmp_path / "elsewhere.log")) is None
    assert s.globs() == [str(pods / "*" / "*" / "*.log"), str(docker / "*" / "*-json.log")]


def _cri(text, tag="F", stream="stdout"):
    return b"2024-03-11T08:15:02.118Z %s %s %s" % (stream.encode(), tag.encode(), text)


def test_joining_fed_line_by_line_gives_what_joining_all_at_once_gives():
    lines = [_cri(b"a1 ", "P"), _cri(b"e1", stream="stderr"), _cri(b"a2 ", "P"), _cri(b"a3"), b"not a record",
             _cri(b"b")]
    offsets, off = [], 0
    for line in lines:
        offsets.append(off)
        off += len(line) + 1
    items = list(zip(offsets, lines))
    whole, still = c.join_lines([], items)
    assert still == []
    pending, parts = [], []
    for item in items:
        out, pending = c.join_lines(pending, [item])
        parts.extend(out)
    assert pending == [] and parts == whole
    assert [j.message for j in whole] == [b"e1", b"a1 a2 a3", b"not a record", b"b"]
    joined = whole[1]
    assert joined.offset == 0 and joined.head == lines[0] and joined.fields["pieces"] == 3
    assert joined.fields["line_bytes"] == offsets[3] + len(lines[3])


def test_a_line_that_never_ends_is_flushed_whole_and_marked_partial():
    out, pending = c.join_lines([], [(0, _cri(b"x", "P")), (40, _cri(b"y", "P", "stderr")), (80, _cri(b"z", "P"))])
    assert out == [] and [p[0] for p in pending] == [0, 40, 80]
    flushed = c.flush_pending(pending)
    assert [(j.offset, j.message, j.fields["partial"]) for j in flushed] == [(0, b"xz", True), (40, b"y", True)]
