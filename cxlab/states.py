"""What an experiment's numbers can say as of a day, before any test is read.

An experiment that has not started, or that no user has entered, has no numbers to
test: its page says so instead of a traffic split "ok" with χ² p = nan and empty
charts. An as-of date after the log's last event is allowed, but the numbers then
stand at the last day with data, and the page says that too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cxlab.config import Experiment
from cxlab.summaries import Summaries

StateKind = Literal["ok", "not_started", "no_exposures", "after_data"]
SUMMARIES = {
    "not_started": "Not started yet as of the as-of date, so no numbers: {ids}.",
    "no_exposures": "No exposures in the log, so no numbers: {ids}.",
    "after_data": "The as-of date is after the data ends on {last:%d %b %Y}: the "
    "numbers of {ids} stand at that day, the last with data.",
}


@dataclass(frozen=True, slots=True)
class ExperimentState:
    """The state of an experiment's data as of a day.

    Attributes:
        experiment_id: the experiment.
        kind: ``ok``; ``not_started`` (as-of before the start); ``no_exposures``
            (no user entered it by the as-of day); ``after_data`` (the as-of day
            is after the log's last event while the experiment still ran).
        as_of: the as-of day asked for.
        last_data_day: the day of the log's last event (None: an empty log).
        message: one sentence for the page; empty when ``ok``.
    """

    experiment_id: str
    kind: StateKind
    as_of: dt.date
    last_data_day: dt.date | None
    message: str = ""

    @property
    def has_results(self) -> bool:
        """Whether there are numbers to show (``ok`` or ``after_data``)."""
        return self.kind in ("ok", "after_data")

    @property
    def label(self) -> str:
        """A table cell: ``ok``, ``not started``, ``no exposures``, ``data ends …``."""
        if self.kind == "after_data" and self.last_data_day is not None:
            return f"data ends {self.last_data_day:%d %b}"
        return self.kind.replace("_", " ")


def experiment_state(
    experiment: Experiment, as_of: dt.date, summaries: Summaries
) -> ExperimentState:
    """The state of one experiment's data as of a day.

    Args:
        experiment: the experiment config.
        as_of: the as-of day of the analysis.
        summaries: the log's summaries that hold the experiment, as of that day.

    Returns:
        The first state that applies: not started, no exposures, as-of after the
        data ends, else ok.
    """
    last_event = summaries.log.last_event
    last_day = last_event.date() if last_event is not None else None
    exposed = summaries.health[experiment.id].exposed_users
    if as_of < experiment.start:
        message = (
            f"Not started yet: {experiment.id} starts on "
            f"{experiment.start:%d %b %Y}, after the as-of date {as_of:%d %b %Y}. "
            "There is nothing to analyse before its start."
        )
        return ExperimentState(experiment.id, "not_started", as_of, last_day, message)
    if exposed == 0:
        message = (
            f"No exposures in the log: no user was exposed to {experiment.id} "
            f"between its start on {experiment.start:%d %b %Y} and {as_of:%d %b %Y}. "
            "Check that the log's exposure rows carry experiment_id "
            f"'{experiment.id}' and its variants."
        )
        return ExperimentState(experiment.id, "no_exposures", as_of, last_day, message)
    # Past the end of an experiment that ended within the data nothing changes.
    still_running = experiment.end is None or (
        last_day is not None and experiment.end > last_day
    )
    if last_day is not None and as_of > last_day and still_running:
        message = (
            f"The as-of date {as_of:%d %b %Y} is after the data ends: the log's last "
            f"event is on {last_day:%d %b %Y}, so these numbers are those of that "
            "day and nothing after it is known."
        )
        return ExperimentState(experiment.id, "after_data", as_of, last_day, message)
    return ExperimentState(experiment.id, "ok", as_of, last_day)


def states_summary(states: Sequence[ExperimentState]) -> list[str]:
    """One sentence per state other than ok, naming its experiments.

    Args:
        states: the state of each experiment (of one log).

    Returns:
        The sentences, in the order not started, no exposures, after the data.
    """
    lines = []
    for kind, text in SUMMARIES.items():
        ids = ", ".join(s.experiment_id for s in states if s.kind == kind)
        last = next((s.last_data_day for s in states if s.kind == kind), None)
        if ids:
            lines.append(text.format(ids=ids, last=last))
    return lines
