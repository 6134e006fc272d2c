"""The positions file: a round trip, and a corrupt file is moved aside, never silently reset."""

from helios.tail import positions
from helios.tail.positions import Position, Positions


def test_positions_round_trip(tmp_path):
    path = tmp_path / "positions.json"
    p = Positions({"ab" * 16: Position("/var/log/x", 1, 2, b"first\n", 0, 1234, 5.0)}, {"prod/x.bkt": 1})
    positions.save(path, p)
    back = positions.load(path)
    assert back.files == p.files and back.spool == p.spool and back.saved_at > 0


def test_a_missing_positions_file_is_an_empty_start(tmp_path):
    p = positions.load(tmp_path / "nope.json")
    assert p.files == {} and not p.recovered


def test_a_corrupt_positions_file_is_moved_aside_and_everything_is_read_again(tmp_path, caplog):
    path = tmp_path / "positions.json"
    path.write_bytes(b'{"version": 1, "files": {"x": {"path": 3')
    p = positions.load(path)
    assert p.recovered and p.files == {}
    assert not path.exists()
    assert list(tmp_path.glob("positions.json.corrupt-*"))
    assert "corrupt" in caplog.text


def test_a_positions_file_of_another_version_is_not_trusted(tmp_path):
    path = tmp_path / "positions.json"
    path.write_bytes(b'{"version": 99, "files": {}}')
    assert positions.load(path).recovered
