"""What the porter loaded of a window early, while the bucks still held it
open (``helios.porter.jobs.fresh``), for the window's own load once it is
closed (``helios.porter.jobs.index``) to go on from.

For every buck, the byte offset up to which its copy was fetched (always
the end of a whole record: a fetch returns whole records only, and a buck
cuts only a torn tail past the last whole record), and the digests of the
frames taken. Everything before an offset, and every frame of ``frames``,
had its events claimed for this window in the dedup ledger (or dropped as
another window's) and the kept ones loaded into the index, before the
offset moved: a fetch, claim or load that fails leaves it where it was.
So the window's load fetches each copy from its offset on, skips the
frames taken, and what it loads and what was loaded early are the window
whole. Kept in memory only: a porter restarted meanwhile loads the window
whole, its claims giving the same events again and the index keeping each
once by its key."""

from __future__ import annotations

from dataclasses import dataclass, field

from helios.query.protocol import BucketEntry

__all__ = ["Early"]


@dataclass
class Early:
    offsets: dict[str, tuple[str, int]] = field(default_factory=dict)   # buck -> (bucket id, bytes loaded)
    frames: set[bytes] = field(default_factory=set)
    events: int = 0                                   # loaded into the index
    left_out: tuple[int, int, int] | None = None      # too old for the index: (count, oldest ns, newest ns)

    def resume_at(self, endpoint: str, entry: BucketEntry) -> int:
        """Where the window's load fetches this buck's copy from: the offset
        loaded early, or 0 when the buck's file is not the one loaded from
        (another bucket id, or shorter than the offset: replaced)."""
        bucket, offset = self.offsets.get(endpoint, ("", 0))
        return offset if bucket == entry.id and entry.size >= offset else 0

    def add_left_out(self, left_out: tuple[int, int, int] | None) -> None:
        if not left_out or not left_out[0]:
            return
        if self.left_out is None:
            self.left_out = left_out
        else:
            n, lo, hi = self.left_out
            self.left_out = (n + left_out[0], min(lo, left_out[1]), max(hi, left_out[2]))
