"""Rights per key (helios.wire.rights): the metadata of a public key file,
what each role may do where, keys without a role, who is local; and the
allow-list and the query server using them (helios.wire.curve,
helios.query.server)."""


import pytest
import zmq

from helios.errors import ServiceError
from helios.query import protocol as p
from helios.query.server import QueryServer
from helios.store import layout
from helios.store.buckets import BucketFiles
from helios.store.records import RecordWriter
from helios.wire import curve, rights
from helios.wire.rights import Peer

OLD = 1_706_659_200


@pytest.mark.parametrize("role,envs", [("sender", "prod"), ("reader", "*"), ("porter", "prod staging"),
                                       ("admin", "*"), ("sender reader", "a.b c_d")])
def test_rights_written_as_metadata_read_back_the_same(role, envs):
    r = rights.parse_values(role, envs)
    assert rights.parse(rights.format_metadata(r)) == r


@pytest.mark.parametrize("action,env,ok", [("send", "prod", True), ("send", "staging", False),
                                           ("read", "prod", False), ("prune", "prod", False),
                                           ("subscribe", None, False)])
def test_a_sender_only_sends_and_only_into_its_environments(action, env, ok):
    assert rights.parse_values("sender", "prod").may(action, env) is ok


def test_each_role_grants_what_the_table_says():
    reader, porter, admin = (rights.parse_values(r, "*") for r in ("reader", "porter", "admin"))
    assert reader.may("read", "x") and reader.may("subscribe") and not reader.may("prune", "x")
    assert not reader.may("send", "x")
    assert porter.may("prune", "x") and porter.may("read", "x") and not porter.may("send", "x")
    assert all(admin.may(a, "x") for a in rights.ACTIONS)


def test_a_reader_of_some_environments_may_not_subscribe_to_the_live_feed():
    assert not rights.parse_values("reader", "prod").may("subscribe")
    assert rights.parse_values("reader", "prod").may("read", "prod")


def test_a_comment_after_a_value_is_allowed_as_the_docs_show_it():
    r = rights.parse('    role = "reader"   # web\n    environments = "prod staging"  # two\n')
    assert r == rights.parse_values("reader", "prod staging")


def test_a_key_file_without_a_role_is_a_sender_of_every_environment_and_nothing_more():
    r = rights.parse('metadata\n    name = "old"\ncurve\n    public-key = "x"\n')
    assert r == rights.DEFAULT and not r.declared
    assert r.may("send", "anything") and not any(r.may(a, "x") for a in ("read", "subscribe", "prune"))


@pytest.mark.parametrize("text,problem", [
    ('role = "reader"\n', "role without environments"),
    ('environments = "prod"\n', "environments without role"),
    ('role = "root"\nenvironments = "*"\n', "unknown role 'root'"),
    ('role = ""\nenvironments = "*"\n', "role is empty"),
    ('role = "reader"\nenvironments = ""\n', "environments is empty"),
    ('role = "reader"\nenvironments = "* prod"\n', '"*" (every environment) goes alone'),
    ('role = "reader"\nenvironments = "../etc"\n', "not an environment name"),
    ('role = "reader"\nrole = "admin"\nenvironments = "*"\n', "role is given twice"),
])
def test_wrong_rights_are_refused_saying_what_is_wrong(text, problem):
    with pytest.raises(ValueError, match=problem.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        rights.parse(text)


@pytest.mark.parametrize("address,local", [("", True), ("127.0.0.1", True), ("127.3.4.5", True), ("::1", True),
                                           ("::ffff:127.0.0.1", True), ("192.0.2.2", False), ("10.0.0.1", False),
                                           ("fd00::2", False), ("not an address", False)])
def test_only_loopback_or_no_address_is_this_host(address, local):
    assert Peer(None, address).local is local


def test_the_allow_list_reads_each_keys_rights_and_names_a_file_with_wrong_ones(tmp_path):
    allow = tmp_path / "allow"
    pub, _ = curve.write_keypair(tmp_path / "k", "porter", rights.parse_values("porter", "prod"))
    old, _ = curve.write_keypair(tmp_path / "k", "old")
    allow.mkdir()
    (allow / "porter.key").write_bytes(pub.read_bytes())
    (allow / "old.key").write_bytes(old.read_bytes())
    (allow / "bad.key").write_text(old.read_text().replace("curve\n", '    role = "boss"\n    environments = "*"\ncurve\n'))
    allowed, problems = curve.read_allow_dir(allow)
    by_name = {r.name: r for r in allowed.values()}
    assert set(by_name) == {"porter.key", "old.key"}
    assert by_name["porter.key"].may("prune", "prod") and not by_name["porter.key"].may("prune", "staging")
    assert not by_name["old.key"].declared
    assert len(problems) == 1 and "bad.key" in problems[0] and "unknown role 'boss'" in problems[0]


def test_a_zap_handler_looks_rights_up_by_the_key_and_sees_a_reload(tmp_path):
    allow = tmp_path / "allow"
    allow.mkdir()
    pub, _ = curve.write_keypair(tmp_path / "k", "web", rights.parse_values("reader", "*"))
    (allow / "web.key").write_bytes(pub.read_bytes())
    key = curve.read_public(pub)
    ctx = zmq.Context()
    try:
        zap = curve.ZapHandler(ctx, str(allow))
        assert zap.rights_of(key.decode()).may("subscribe") and zap.rights_of(None) is None
        (allow / "web.key").write_text(pub.read_text().replace('role = "reader"', 'role = "sender"'))
        zap.reload()
        assert zap.changed and not zap.rights_of(key).may("subscribe") and zap.rights_of(key).may("send", "x")
        (allow / "web.key").unlink()
        zap.reload()
        assert zap.rights_of(key) is None
        zap.close()
    finally:
        ctx.destroy(linger=0)


def test_an_allow_list_with_a_wrong_rights_file_stops_the_zap_handler_naming_it(tmp_path):
    allow = tmp_path / "allow"
    allow.mkdir()
    pub, _ = curve.write_keypair(tmp_path / "k", "x")
    (allow / "x.key").write_text(pub.read_text().replace("curve\n", '    role = "reader"\ncurve\n'))
    ctx = zmq.Context()
    try:
        with pytest.raises(ServiceError, match="x.key: role without environments"):
            curve.ZapHandler(ctx, str(allow))
    finally:
        ctx.destroy(linger=0)


# --------------------------------------------------------------------------- the query server's checks

@pytest.fixture
def server(tmp_path):
    root = tmp_path / "buckets"
    files = BucketFiles(root, 60)
    table = {"porter": rights.parse_values("porter", "prod").named("porter.key"),
             "other": rights.parse_values("porter", "*").named("other.key")}
    yield QueryServer(None, root, files, lambda: {"senders": {"prod/h1": {}, "staging/h2": {}}},
                      rights_of=table.get), table
    files.close()


def plant(root, env, start):
    path = layout.bucket_path(root, env, start, 60)
    with RecordWriter(path) as w:
        w.append(b"x")
    return layout.bucket_id(layout.BucketName(env, start, 60))


def test_a_record_is_kept_per_key_and_replaced_by_the_next_one(server):
    qs, table = server
    a, b = plant(qs.root, "prod", OLD), plant(qs.root, "prod", OLD + 60)
    porter, other = Peer(table["porter"]), Peer(table["other"])
    assert qs.answer(p.RecordRequest("p1", (a, b), (a, b)), peer=porter).ok
    assert qs.answer(p.RecordRequest("p1", (a,), (a,)), peer=porter).ok  # the newer record wins
    reply = qs.answer(p.PruneRequest((a, b)), peer=other)
    assert reply.deleted == () and all("no record from key other.key" in r for r in reply.refused.values())
    reply = qs.answer(p.PruneRequest((a, b)), peer=porter)
    assert reply.deleted == (a,) and reply.refused[b].startswith("not indexed")


def test_a_window_left_out_of_the_archive_by_the_blacklist_may_go_once_indexed(server):
    qs, table = server
    a = plant(qs.root, "prod", OLD)
    porter = Peer(table["porter"])
    assert qs.answer(p.RecordRequest("p1", indexed=(a,), skipped=(a,)), peer=porter).ok
    assert qs.answer(p.PruneRequest((a,)), peer=porter).deleted == (a,)


def test_a_pruned_window_leaves_the_record_so_a_window_written_again_needs_a_new_one(server):
    qs, table = server
    a = plant(qs.root, "prod", OLD)
    porter = Peer(table["porter"])
    qs.answer(p.RecordRequest("p1", (a,), (a,)), peer=porter)
    assert qs.answer(p.PruneRequest((a,)), peer=porter).deleted == (a,)
    plant(qs.root, "prod", OLD)  # a late spool re-send writes the window again
    reply = qs.answer(p.PruneRequest((a,)), peer=porter)
    assert reply.deleted == () and reply.refused[a].startswith("not indexed")


def test_a_key_no_longer_on_the_list_and_stats_of_one_environment(server):
    qs, table = server
    gone = qs.answer(p.StatsRequest(), peer=Peer(rights.NOBODY))
    assert not gone.ok and "no longer on the allow-list" in gone.reason
    reader = Peer(rights.parse_values("reader", "prod").named("r.key"))
    assert set(qs.answer(p.StatsRequest(), peer=reader).stats["senders"]) == {"prod/h1"}
    assert set(qs.answer(p.StatsRequest(), peer=Peer(table["other"])).stats["senders"]) == {"prod/h1", "staging/h2"}


def test_without_curve_a_remote_peer_lists_but_may_not_fetch_unless_allowed(tmp_path):
    root = tmp_path / "buckets"
    files = BucketFiles(root, 60)
    try:
        a = plant(root, "prod", OLD)
        far = Peer(None, "10.1.2.3")
        qs = QueryServer(None, root, files, dict)
        assert qs.answer(p.ListRequest(), peer=far).ok
        for request in (p.FetchRequest(a), p.PruneRequest((a,)), p.RecordRequest("x"), p.ReportRequest("x", {})):
            reply = qs.answer(request, peer=far)
            assert not reply.ok and "a client at 10.1.2.3 is not on this buck's host" in reply.reason
        assert QueryServer(None, root, files, dict, allow_remote=True).answer(p.FetchRequest(a), peer=far).ok
    finally:
        files.close()


def test_one_keys_many_records_never_crowd_out_another_keys(server):
    from helios.query.server import MAX_REPORTS

    qs, table = server
    a = plant(qs.root, "prod", OLD)
    other, porter = Peer(table["other"]), Peer(table["porter"])
    for i in range(MAX_REPORTS):
        assert qs.answer(p.RecordRequest(f"junk{i}"), peer=other).ok
    assert "at most" in qs.answer(p.RecordRequest("one-more"), peer=other).reason
    assert qs.answer(p.RecordRequest("porter@p", (a,), (a,)), peer=porter).ok
    assert qs.answer(p.PruneRequest((a,)), peer=porter).deleted == (a,)
