"""Options that select rows and define fronts, shared by every reader and command."""

from __future__ import annotations

from dataclasses import dataclass

MEASURE_EVENTS = "events"
MEASURE_DEATHS = "deaths"
#: The front of kept rows whose ``by`` column is empty (unless ``strict_fronts``).
UNKNOWN_FRONT = "unknown"


@dataclass(frozen=True)
class SelectOptions:
    """Which rows of an external export to keep, and which column names the front.

    Attributes
    ----------
    by : str or None
        Column that defines ``front``.  ACLED: ``country`` (default), ``admin1``, ``actor1``,
        ``event_type``.  UCDP: ``country`` (default), ``adm_1``, ``side_a``, ``side_b``,
        ``dyad_name``, ``conflict_name``, ``type_of_violence``.  Ignored by the canonical
        format, whose ``front`` column is given.
    countries, event_types, sub_event_types : tuple of str
        Keep only rows whose column equals one of these (case-insensitive); empty keeps all.
    actors : tuple of str
        Keep only rows where one of these case-insensitive substrings occurs in an actor
        column (ACLED ``actor1``, ``actor2``, ``assoc_actor_1``, ``assoc_actor_2``; UCDP
        ``side_a``, ``side_b``); empty keeps all.
    measure : str
        ``events`` (one per row) or ``deaths`` (UCDP ``best``, ACLED ``fatalities``).
    strict_fronts : bool
        An empty ``by`` value is an error; by default such rows form the front
        :data:`UNKNOWN_FRONT`, with a warning that counts them.
    """

    by: str | None = None
    countries: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    sub_event_types: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    measure: str = MEASURE_EVENTS
    strict_fronts: bool = False

    @property
    def selects_rows(self) -> bool:
        return bool(self.countries or self.event_types or self.sub_event_types or self.actors)
