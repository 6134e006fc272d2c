"""A buck's one address (helios.wire.address): its ingest, live feed and
query endpoints follow from it, as the buck's "auto" endpoints do; and the
[mesh] bucks of a config file fill every command's endpoint lists."""

import pytest

from helios import config
from helios.errors import ConfigError
from helios.wire.address import AddressError, endpoints, parse


@pytest.mark.parametrize("text, host, port", [
    ("tcp://buck-a:7301", "buck-a", 7301),
    ("buck-a:7401", "buck-a", 7401),
    ("buck-a", "buck-a", 7301),
    ("10.0.0.5", "10.0.0.5", 7301),
    ("[::1]:9000", "[::1]", 9000),
    ("tcp://[fe80::1]:9000", "[fe80::1]", 9000),
    (" buck.example.net:7301 ", "buck.example.net", 7301),
])
def test_an_address_gives_the_ingest_port_and_the_two_above_it(text, host, port):
    a = parse(text)
    assert (a.host, a.port) == (host, port)
    assert a.endpoint("ingest") == f"tcp://{host}:{port}"
    assert a.endpoint("feed") == f"tcp://{host}:{port + 1}"
    assert a.endpoint("query") == f"tcp://{host}:{port + 2}"
    # Round trip: the address as shown, and the ingest endpoint, parse back to the same buck.
    assert parse(str(a)) == a == parse(a.endpoint("ingest"))


def test_the_derived_endpoints_are_those_the_buck_binds_when_auto():
    from helios.buck.service import auto_publish, auto_query

    ingest, feed, query = (endpoints(["127.0.0.1:7301"], role)[0] for role in ("ingest", "feed", "query"))
    assert (auto_publish(ingest), auto_query(ingest)) == (feed, query)


@pytest.mark.parametrize("text, why", [
    ("ipc:///run/helios/buck.sock", "--ingest, --feed and --query"),
    ("inproc://x", "--ingest, --feed and --query"),
    ("tcp://buck-a", "names its port"),
    ("buck-a:65534", "the port must be 1..65533"),
    ("buck-a:0", "the port must be"),
    ("buck-a:*", "not a buck address"),
    ("http://buck-a:7301", "not a buck address"),
    ("", "not a buck address"),
    ("buck a:7301", "not a buck address"),
])
def test_what_is_not_an_address_is_refused_with_what_one_looks_like(text, why):
    with pytest.raises(AddressError) as exc:
        parse(text)
    assert why in str(exc.value)


def test_mesh_bucks_fill_every_commands_endpoints(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[mesh]\nbucks = ["a:7301", "b:7401"]\n')
    cfg = config.load(path)
    assert cfg.tailer.bucks == cfg.relay.bucks == ("tcp://a:7301", "tcp://b:7401")
    assert cfg.subscribe.bucks == cfg.web.bucks_pub == ("tcp://a:7302", "tcp://b:7402")
    assert cfg.query.bucks == cfg.porter.bucks == ("tcp://a:7303", "tcp://b:7403")


def test_a_sections_own_endpoints_win_over_mesh_in_the_file_and_flags_win_over_both(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[mesh]\nbucks = ["a:7301"]\n[subscribe]\nbucks = ["tcp://a:9999"]\n')
    assert config.load(path).subscribe.bucks == ("tcp://a:9999",)
    # --buck on the command line: the address wins over the file's endpoints ...
    cfg = config.load(path, {"mesh.bucks": ("c:7301",)})
    assert cfg.subscribe.bucks == ("tcp://c:7302",) and cfg.query.bucks == ("tcp://c:7303",)
    # ... and an explicit --feed wins over the address.
    cfg = config.load(path, {"mesh.bucks": ("c:7301",), "subscribe.bucks": ("ipc:///tmp/feed",)})
    assert cfg.subscribe.bucks == ("ipc:///tmp/feed",) and cfg.query.bucks == ("tcp://c:7303",)


def test_a_bad_address_is_reported_with_the_other_problems(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[mesh]\nbucks = ["ipc:///x", "a:7301", "a:7301"]\n[query]\ntimeout = -1\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    text = "; ".join(exc.value.problems)
    assert "mesh.bucks" in text and "--ingest, --feed and --query" in text and "query.timeout" in text


def test_a_tailer_needs_no_bucks_section_of_its_own_with_mesh(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[mesh]\nbucks = ["a"]\n[tailer]\npaths = ["/var/log/*.log"]\n')
    assert config.load(path, require=("tailer",)).tailer.bucks == ("tcp://a:7301",)


def test_an_explicit_endpoint_flag_wins_over_the_files_mesh(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[mesh]\nbucks = ["a:7301"]\n')
    cfg = config.load(path, {"subscribe.bucks": ("tcp://x:9000",)})
    assert cfg.subscribe.bucks == ("tcp://x:9000",) and cfg.query.bucks == ("tcp://a:7303",)


def test_without_any_address_the_defaults_are_the_local_bucks_ports():
    cfg = config.load(None)
    assert cfg.subscribe.bucks == endpoints(["127.0.0.1"], "feed")
    assert cfg.query.bucks == cfg.porter.bucks == endpoints(["127.0.0.1"], "query")


def test_a_sections_own_list_takes_addresses_too_and_endpoints_as_before(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[subscribe]\nbucks = ["a:7301", "tcp://b:9000"]\n[porter]\nbucks = ["c"]\n'
                    '[tailer]\npaths = ["/x"]\nbucks = ["[::1]:7401", "ipc:///run/b.sock"]\n')
    cfg = config.load(path)
    assert cfg.subscribe.bucks == ("tcp://a:7302", "tcp://b:9000")
    assert cfg.porter.bucks == ("tcp://c:7303",)
    assert cfg.tailer.bucks == ("tcp://[::1]:7401", "ipc:///run/b.sock")
    path.write_text('[query]\nbucks = ["a:99999", "b"]\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    assert exc.value.problems == ["query.bucks[0]: 'a:99999': the port must be 1..65533 (the live feed and query "
                                  "endpoints take the two above it)"]


def test_an_explicit_endpoint_flag_takes_only_endpoints():
    # --feed buck-a:7302 is not read as an address (which would give 7303): it is refused.
    with pytest.raises(ConfigError) as exc:
        config.load(None, {"subscribe.bucks": ("buck-a:7302",)})
    assert "'buck-a:7302' is not a ZeroMQ endpoint" in exc.value.problems[0]
