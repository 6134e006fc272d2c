"""What ``helios audit --index`` found: plain dataclasses, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

NS = 1_000_000_000
SKEW_S = 60          # clocks of hosts and bucks may disagree this much
EXAMPLES = 3         # example lines per window
SHOWN_WINDOWS = 20   # windows listed with their examples (the rest: counted)


def loaded_elsewhere(index_into: str | None, indexed: bool, identity: str | None) -> str | None:
    """The other index a window was loaded into, by the porter's record
    (``WindowState.index_into``) against ``identity``, this index's; None:
    loaded into this one, not loaded, or no index recorded (an older
    state: taken to be this one, as before the porter recorded it)."""
    if not indexed or index_into is None or identity is None or index_into == identity:
        return None
    return index_into


@dataclass
class Difference:
    """Events of one window missing from the index (or extra in it)."""

    window: str
    count: int
    examples: list[str] = field(default_factory=list)


@dataclass
class EnvReport:
    environment: str
    windows_checked: int = 0
    events_checked: int = 0          # distinct events expected in the index (and so looked for)
    index_events: int = 0            # distinct ids the index holds of the environment
    missing: list[Difference] = field(default_factory=list)
    extra: list[Difference] = field(default_factory=list)
    duplicates: int = 0              # ids held more than once in the index
    duplicate_examples: list[str] = field(default_factory=list)
    not_loaded: list[str] = field(default_factory=list)    # windows (or copies) the porter has not loaded yet
    pruned: int = 0                  # windows loaded, since pruned from every buck
    too_old: int = 0                 # events of checked windows older than the index keeps
    pending: int = 0                 # events of checked windows also in a window not yet loaded
    aside: int = 0                   # events the porter sets aside (quarantine)
    extras_from: int | None = None   # ns: index events received from here on were checked for extras
    extras_to: int | None = None
    extras_unchecked: int = 0        # index events received outside that range
    extras_skipped: str = ""         # why the extras were not checked at all
    moved: list[Difference] = field(default_factory=list)   # in the index at another time than the bucks hold
    disagree: int = 0                # events whose copies on the bucks differ in time (not checked for moves)
    # Windows the porter's record says were loaded into another index (its identity -> window ids): not checked.
    elsewhere: dict[str, list[str]] = field(default_factory=dict)
    # --content: events whose content the index holds otherwise than the bucks (but the time: moved).
    changed: list[Difference] = field(default_factory=list)
    content_checked: int = 0         # events whose content was compared
    content_disagree: int = 0        # events whose loaded copies on the bucks differ in content (not compared)
    content_skipped: str = ""        # why the content was not compared at all (--content asked)

    @property
    def missing_count(self) -> int:
        return sum(d.count for d in self.missing)

    @property
    def extra_count(self) -> int:
        return sum(d.count for d in self.extra)

    @property
    def moved_count(self) -> int:
        return sum(d.count for d in self.moved)

    @property
    def changed_count(self) -> int:
        return sum(d.count for d in self.changed)

    @property
    def ok(self) -> bool:
        return (not self.missing and not self.extra and not self.duplicates and not self.moved and not self.changed
                and not (self.content_skipped and self.windows_checked))


@dataclass
class IndexReport:
    index: str
    state: str
    bucks: list[str]
    environments: dict[str, EnvReport] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)
    fetch_errors: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)    # copies pruned while they were read
    bad_frames: int = 0
    answered: int = 0
    identity: str | None = None      # this index as the porter's state records one (state.index_identity)
    porter_index: str | None = None  # the index the porter's config names (None: no config given)
    content: bool = False            # --content: each event's content compared too

    @property
    def checked(self) -> int:
        return sum(e.windows_checked for e in self.environments.values())

    @property
    def ok(self) -> bool:
        # Nothing checked proves nothing: a failure too, as no buck answering is for ``helios audit``.
        return (self.answered > 0 and self.checked > 0 and not self.fetch_errors
                and all(e.ok for e in self.environments.values()))
