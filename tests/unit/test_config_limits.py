"""The config keys of the whole-message and live subscription limits (issue 17)."""

from helios import config
from tests.unit.test_config import only_problem, write


def test_the_limits_have_safe_defaults():
    buck, relay = config.Buck(), config.Relay()
    assert buck.max_message_bytes == buck.max_frame_bytes == 64 * 1024 * 1024
    assert buck.max_message_parts == 65536 and relay.max_message_parts == 4096
    assert buck.live_max_subscriptions == 100_000 and buck.live_max_subscriptions_per_peer == 20_000


def test_a_message_limit_below_the_frame_limit_is_refused_for_the_buck_and_the_relay(tmp_path):
    assert only_problem(tmp_path, "[buck]\nmax_frame_bytes = 1048576\nmax_message_bytes = 65536\n") == \
        "buck.max_message_bytes: must be >= max_frame_bytes (1048576): a frame is a message of one part"
    assert only_problem(tmp_path, '[relay]\nbucks = ["tcp://a:1", "tcp://b:1"]\nmax_message_bytes = 4096\n').startswith(
        "relay.max_message_bytes: must be >= max_frame_bytes")


def test_the_limits_load_from_a_file(tmp_path):
    cfg = config.load(write(tmp_path, "[buck]\nmax_message_parts = 10\nlive_max_subscriptions_per_peer = 5\n"))
    assert cfg.buck.max_message_parts == 10 and cfg.buck.live_max_subscriptions_per_peer == 5
    assert only_problem(tmp_path, "[buck]\nlive_max_subscriptions = 0\n") == \
        "buck.live_max_subscriptions: must be 1..10000000, got 0"
