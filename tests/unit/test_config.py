"""The config schema and loader: what a file and flags may say, and how every
problem is reported at once as "key.path: what is wrong"."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios import config
from helios.errors import ConfigError

TAILER = """
[tailer]
paths = ["/var/log/*.log"]
bucks = ["tcp://buck-a:7301", "tcp://buck-b:7301"]
"""


def write(tmp_path, text: str):
    path = tmp_path / "helios.toml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path, text: str | None = None, **kwargs) -> list[str]:
    """The problems loading ``text`` (or no file) raises; fails if none."""
    path = None if text is None else write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        config.load(path, **kwargs)
    return caught.value.problems


def only_problem(tmp_path, text: str | None = None, **kwargs) -> str:
    [problem] = problems(tmp_path, text, **kwargs)
    return problem


# --- valid files ---

def test_a_valid_file_loads_with_the_declared_types(tmp_path):
    cfg = config.load(write(tmp_path, """
        [buck]
        name = "b1"
        ingest = "tcp://*:7400"
        window = 300
        fsync = true
        stats_interval = 2
        [tailer]
        paths = ["/var/log/syslog", "/srv/*/log/*.log"]
        bucks = ["tcp://10.0.0.1:7301", "ipc:///run/buck.sock", "inproc://buck"]
        copies = 3
        format = "rfc5424"
        timezone = "Europe/Paris"
        start_at = "beginning"
        batch_delay = 0.5
    """))
    assert cfg.buck.name == "b1" and cfg.buck.ingest == "tcp://*:7400"
    assert cfg.buck.window == 300 and cfg.buck.fsync is True
    assert cfg.buck.stats_interval == 2.0 and isinstance(cfg.buck.stats_interval, float)
    assert cfg.tailer.paths == ("/var/log/syslog", "/srv/*/log/*.log")
    assert cfg.tailer.bucks == ("tcp://10.0.0.1:7301", "ipc:///run/buck.sock", "inproc://buck")
    assert (cfg.tailer.copies, cfg.tailer.format) == (3, "rfc5424")
    assert (cfg.tailer.timezone, cfg.tailer.start_at) == ("Europe/Paris", "beginning")
    assert cfg.sections_present == {"buck", "tailer"}


def test_keys_not_given_take_their_declared_defaults(tmp_path):
    cfg = config.load(write(tmp_path, TAILER))
    assert cfg.tailer.copies == 2 and cfg.tailer.format == "auto"
    assert cfg.tailer.batch_events == 2000 and cfg.tailer.poll_interval == 0.02
    assert cfg.buck == config.Buck()
    assert cfg.buck.window == 60 and cfg.buck.max_frame_bytes == 67108864


def test_no_file_and_no_flags_gives_every_default_and_no_section_present():
    cfg = config.load(None)
    assert cfg == config.Config()
    assert cfg.sections_present == frozenset()


def test_the_config_is_frozen(tmp_path):
    cfg = config.load(write(tmp_path, TAILER))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.tailer.copies = 5  # type: ignore[misc]


# --- unknown names ---

def test_an_unknown_section_is_reported(tmp_path):
    assert only_problem(tmp_path, "[colour]\nx = 1\n") == \
        f"colour: unknown section (known: {', '.join(config.SECTIONS)})"


def test_an_unknown_key_is_reported_with_the_known_keys(tmp_path):
    problem = only_problem(tmp_path, '[buck]\ncolour = "red"\n')
    known = ", ".join(sorted(f.name for f in dataclasses.fields(config.Buck)))
    assert problem == f"buck.colour: unknown key (known: {known})"


def test_a_section_that_is_not_a_table_is_reported(tmp_path):
    assert only_problem(tmp_path, "buck = 3\n") == "buck: must be a table ([buck]), got 3 (an integer)"


# --- all at once ---

def test_every_problem_in_a_file_is_reported_in_one_error(tmp_path):
    found = problems(tmp_path, """
        [buck]
        window = 7
        colour = "red"
        [tailer]
        paths = ["/var/log/*.log"]
        bucks = ["tcp//x"]
        copies = "2"
        format = "xml"
        [nope]
    """)
    assert len(found) == 6
    assert [p.split(":")[0] for p in found] == [
        "nope", "buck.colour", "buck.window", "tailer.format", "tailer.bucks[0]", "tailer.copies"]


def test_the_error_names_the_file_as_its_source(tmp_path):
    path = write(tmp_path, "[buck]\nwindow = 7\n")
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    assert caught.value.source == str(path)
    assert str(path) in str(caught.value) and "buck.window" in str(caught.value)


# --- types ---

def test_a_string_where_an_integer_is_expected_is_a_problem(tmp_path):
    assert only_problem(tmp_path, '[buck]\nwindow = "60"\n') == \
        "buck.window: must be an integer, got '60' (a string)"


def test_a_boolean_is_not_an_integer(tmp_path):
    assert only_problem(tmp_path, "[buck]\nrcvhwm = true\n") == \
        "buck.rcvhwm: must be an integer, got true (a boolean)"


def test_an_integer_is_accepted_where_a_float_is_expected(tmp_path):
    cfg = config.load(write(tmp_path, "[buck]\nstats_interval = 5\n"))
    assert cfg.buck.stats_interval == 5.0 and type(cfg.buck.stats_interval) is float


def test_a_float_where_an_integer_is_expected_is_a_problem(tmp_path):
    assert only_problem(tmp_path, "[buck]\nwindow = 60.0\n") == \
        "buck.window: must be an integer, got 60.0 (a float)"


def test_a_non_finite_float_is_a_problem(tmp_path):
    assert only_problem(tmp_path, "[buck]\nstats_interval = inf\n") == \
        "buck.stats_interval: must be a finite number, got inf"


def test_a_list_item_of_the_wrong_type_is_reported_with_its_index(tmp_path):
    found = problems(tmp_path, TAILER.replace('["/var/log/*.log"]', '["/a", 3, "/b", false]'))
    assert found == ["tailer.paths[1]: must be a string, got 3 (an integer)",
                     "tailer.paths[3]: must be a string, got false (a boolean)"]


def test_a_single_string_where_a_list_is_expected_is_a_problem(tmp_path):
    assert only_problem(tmp_path, TAILER.replace('["/var/log/*.log"]', '"/var/log/*.log"')) == \
        "tailer.paths: must be a list of strings, got '/var/log/*.log' (a string)"


# --- checks ---

@pytest.mark.parametrize("key, value, expected", [
    ("batch_events", "0", "must be 1..100000, got 0"),
    ("batch_bytes", "1023", "must be 1024..67108864, got 1023"),
    ("batch_delay", "0", "must be > 0 and <= 60, got 0.0"),
    ("batch_delay", "60.5", "must be > 0 and <= 60, got 60.5"),
    ("sndhwm", "0", "must be >= 1, got 0"),
])
def test_a_value_out_of_range_is_reported(tmp_path, key, value, expected):
    assert only_problem(tmp_path, f"{TAILER}{key} = {value}\n") == f"tailer.{key}: {expected}"


def test_a_frame_limit_under_4096_bytes_is_reported(tmp_path):
    assert only_problem(tmp_path, "[buck]\nmax_frame_bytes = 100\n") == \
        "buck.max_frame_bytes: must be >= 4096, got 100"


@pytest.mark.parametrize("bad", ["tcp//x", "tcp://host", "tcp://:7301", "udp://h:1", "ipc://", ""])
def test_a_bad_endpoint_is_reported_with_its_index(tmp_path, bad):
    text = TAILER.replace('"tcp://buck-b:7301"', f'"{bad}"')
    assert only_problem(tmp_path, text) == (
        f"tailer.bucks[1]: {bad!r} is not a ZeroMQ endpoint "
        "(tcp://HOST:PORT, ipc://PATH or inproc://NAME)")


@pytest.mark.parametrize("port", ["0", "65536"])
def test_an_endpoint_port_outside_1_to_65535_is_reported(tmp_path, port):
    assert only_problem(tmp_path, f'[buck]\ningest = "tcp://127.0.0.1:{port}"\n') == \
        f"buck.ingest: 'tcp://127.0.0.1:{port}': port must be 1..65535"


@pytest.mark.parametrize("good", ["tcp://[::1]:7301", "tcp://buck-a.example.org:1",
                                  "ipc:///run/helios/buck.sock", "inproc://bucks"])
def test_well_formed_endpoints_are_accepted(tmp_path, good):
    cfg = config.load(write(tmp_path, f'{TAILER}copies = 1\nbucks = ["{good}"]\n'
                            .replace('bucks = ["tcp://buck-a:7301", "tcp://buck-b:7301"]\n', "")))
    assert cfg.tailer.bucks == (good,)


def test_the_star_host_is_accepted_for_binding_but_not_for_connecting(tmp_path):
    assert config.load(write(tmp_path, '[buck]\ningest = "tcp://*:7301"\n')).buck.ingest == \
        "tcp://*:7301"
    assert only_problem(tmp_path, TAILER.replace("buck-a", "*")) == \
        "tailer.bucks[0]: 'tcp://*:7301': host '*' is for binding; name the host to connect to"


def test_a_buck_listed_twice_is_reported(tmp_path):
    assert only_problem(tmp_path, TAILER.replace("buck-b", "buck-a")) == \
        "tailer.bucks: 'tcp://buck-a:7301' listed more than once"


def test_an_unknown_format_is_reported(tmp_path):
    assert only_problem(tmp_path, f'{TAILER}format = "xml"\n') == \
        "tailer.format: must be one of auto, rfc3164, rfc5424, iso8601, json, raw, got 'xml'"


@pytest.mark.parametrize("bad", ["", ".hidden", "../etc", "a/b", "with space", "x" * 65])
def test_a_bad_environment_name_is_reported(tmp_path, bad):
    problem = only_problem(tmp_path, f'{TAILER}environment = "{bad}"\n')
    assert problem.startswith(f"tailer.environment: {bad!r} is not an environment name")


def test_an_unknown_time_zone_is_reported_and_local_is_accepted(tmp_path):
    assert only_problem(tmp_path, f'{TAILER}timezone = "Mars/Olympus"\n') == (
        "tailer.timezone: 'Mars/Olympus' is not an IANA time zone name "
        "(like 'Europe/Paris') or 'local'")
    assert config.load(write(tmp_path, f'{TAILER}timezone = "local"\n')).tailer.timezone == "local"


@pytest.mark.parametrize("window", [7, 3600 * 5])
def test_a_window_that_does_not_divide_a_day_is_reported(tmp_path, window):
    assert only_problem(tmp_path, f"[buck]\nwindow = {window}\n") == \
        f"buck.window: must divide 86400 (a day), got {window}"


@given(st.integers(min_value=1, max_value=86400))
def test_a_window_loads_exactly_when_it_divides_a_day(window):
    if 86400 % window == 0:
        assert config.load(None, {"buck.window": window}).buck.window == window
    else:
        with pytest.raises(ConfigError):
            config.load(None, {"buck.window": window})


def test_a_window_wider_than_a_day_is_reported(tmp_path):
    assert only_problem(tmp_path, "[buck]\nwindow = 172800\n") == \
        "buck.window: must be 1..86400, got 172800"


def test_copies_above_the_number_of_bucks_is_no_error(tmp_path):
    # One buck needs no copies = 1: each batch goes to every buck (the command warns once).
    (tmp_path / "c.toml").write_text(f"{TAILER}copies = 3\n")
    assert config.load(tmp_path / "c.toml").tailer.copies == 3


# --- the file itself ---

def test_a_toml_syntax_error_is_one_problem_with_its_line(tmp_path):
    problem = only_problem(tmp_path, "[buck]\nwindow = 60\nfsync =\n")
    assert problem.startswith("file: not valid TOML:")
    assert "line 3" in problem


def test_a_missing_file_is_a_problem(tmp_path):
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path / "absent.toml", require=["tailer"])
    assert caught.value.problems == ["file: cannot be read (No such file or directory)"]


# --- required keys ---

def test_required_keys_are_missing_only_when_their_section_is_required(tmp_path):
    path = write(tmp_path, "[buck]\nwindow = 30\n")
    assert config.load(path).tailer.paths == ()
    with pytest.raises(ConfigError) as caught:
        config.load(path, require=["tailer"])
    assert caught.value.problems == ["tailer.paths: required, not set",
                                     "tailer.bucks: required, not set (or the bucks' addresses: [mesh] bucks, or --buck)"]


def test_a_section_present_in_the_file_is_fully_validated_even_if_not_required(tmp_path):
    assert only_problem(tmp_path, '[tailer]\npaths = ["/x"]\n') == \
        "tailer.bucks: required, not set (or the bucks' addresses: [mesh] bucks, or --buck)"


def test_an_empty_required_list_is_reported(tmp_path):
    assert only_problem(tmp_path, TAILER.replace('["/var/log/*.log"]', "[]")) == \
        "tailer.paths: must not be empty"


# --- overrides ---

def test_overrides_win_over_the_file(tmp_path):
    cfg = config.load(write(tmp_path, TAILER), {"tailer.copies": 1, "tailer.paths": ("/x", "/y")})
    assert cfg.tailer.copies == 1 and cfg.tailer.paths == ("/x", "/y")
    assert cfg.tailer.bucks == ("tcp://buck-a:7301", "tcp://buck-b:7301")


def test_overrides_are_validated_and_named_by_their_key_path(tmp_path):
    found = problems(tmp_path, TAILER, overrides={"tailer.copies": 9, "buck.window": "big"})
    assert found == ["buck.window: must be an integer, got 'big' (a string)",
                     "tailer.copies: must be 1..8, got 9"]


def test_an_override_of_an_unknown_key_is_rejected(tmp_path):
    assert only_problem(tmp_path, overrides={"nope.key": 1}) == \
        f"nope.key: unknown section (known: {', '.join(config.SECTIONS)})"
    assert only_problem(tmp_path, overrides={"buck.colour": "red"}).startswith(
        "buck.colour: unknown key (known: ")


def test_overrides_of_none_or_an_empty_tuple_mean_the_flag_was_not_given(tmp_path):
    cfg = config.load(write(tmp_path, TAILER), {"tailer.paths": (), "tailer.copies": None})
    assert cfg.tailer.paths == ("/var/log/*.log",) and cfg.tailer.copies == 2


def test_overrides_alone_need_no_file_and_mark_their_section_present():
    cfg = config.load(None, {"tailer.paths": ("/x",), "tailer.bucks": ("tcp://b:1",),
                             "tailer.copies": 1}, require=["tailer"])
    assert cfg.tailer.bucks == ("tcp://b:1",)
    assert cfg.sections_present == {"tailer"}


def test_problems_without_a_file_name_flags_as_their_source():
    with pytest.raises(ConfigError) as caught:
        config.load(None, {"buck.window": 7})
    assert caught.value.source == "flags"


# --- the schema as data ---

def test_default_and_doc_come_from_the_schema():
    assert config.default("buck", "window") == 60
    assert config.default("tailer", "format") == "auto"
    assert "86400" in config.doc("buck", "window")
    with pytest.raises(KeyError):
        config.default("buck", "colour")


def test_describe_shows_every_section_and_key():
    text = config.describe()
    for name, cls in config.SECTIONS.items():
        assert f"[{name}]" in text
        for f in dataclasses.fields(cls):
            assert f"\n{f.name} = " in text
            assert f.metadata["doc"].split()[0] in text


def test_describe_output_loads_back_without_problems(tmp_path):
    cfg = config.load(write(tmp_path, config.describe()), require=config.SECTIONS)
    assert cfg.buck == config.Buck()
    assert cfg.tailer.copies == config.default("tailer", "copies")
    assert cfg.tailer.paths and cfg.tailer.bucks
    assert cfg.sections_present == set(config.SECTIONS)


def test_to_dict_gives_every_section_with_lists_as_lists(tmp_path):
    as_dict = config.to_dict(config.load(write(tmp_path, TAILER)))
    assert set(as_dict) == set(config.SECTIONS)
    assert as_dict["tailer"]["bucks"] == ["tcp://buck-a:7301", "tcp://buck-b:7301"]
    assert as_dict["buck"]["window"] == 60



def test_the_spool_keys_are_one_sub_schema_of_tailer_and_relay(tmp_path):
    spool = {f.name for f in dataclasses.fields(config.Spool)}
    assert spool == {"spool_window", "spool_max_bytes", "spool_max_age", "resend_jitter", "live_wait"}
    for section in (config.Tailer, config.Relay):
        assert spool <= {f.name for f in dataclasses.fields(section)}
    found = problems(tmp_path, """
        [tailer]
        paths = ["/var/log/*.log"]
        bucks = ["tcp://buck-a:7301", "tcp://buck-b:7301"]
        spool_window = 7
        spool_max_age = 0
        [relay]
        bucks = ["tcp://buck-a:7301", "tcp://buck-b:7301"]
        spool_window = 7
        spool_max_age = 0
    """, require={"tailer", "relay"})
    assert sorted(p.split(":")[0] for p in found) == [
        "relay.spool_max_age", "relay.spool_window", "tailer.spool_max_age", "tailer.spool_window"]
    assert "spool" not in config.SECTIONS  # a part of both, not a section


def test_a_misspelt_section_or_key_gets_the_closest_known_name(tmp_path):
    (tmp_path / "c.toml").write_text('[tailr]\npaths = []\n[buck]\ningets = "tcp://127.0.0.1:7301"\n'
                                     'colour = "red"\n')
    with pytest.raises(ConfigError) as exc:
        config.load(tmp_path / "c.toml")
    tailr, ingets, colour = sorted(exc.value.problems, key=lambda p: ("tailr" not in p, "ingets" not in p))
    assert tailr.startswith("tailr: unknown section; did you mean tailer? (known: ")
    assert ingets.startswith("buck.ingets: unknown key; did you mean ingest? (known: ")
    assert "did you mean" not in colour
