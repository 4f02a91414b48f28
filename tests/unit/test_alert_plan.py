"""The alert decision: said once when it starts, again only after the repeat time, and when it ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bridge.watch.alerts import plan
from bridge.watch.conditions import Condition

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
REPEAT = timedelta(hours=6)
DEAD = Condition("dead_commands", "2 command(s) dead", "see the list")
SILENT = Condition("silence:stripe", "no stripe webhook for 25 h", "is the endpoint enabled?")


def test_a_new_condition_is_said_and_remembered() -> None:
    decided = plan([DEAD], {}, T0, REPEAT)
    assert [(m.key, m.level) for m in decided.messages] == [("dead_commands", "failure")]
    assert decided.memory == {"sent": {"dead_commands": T0.isoformat()}}


def test_a_lasting_condition_is_not_said_again_before_the_repeat_time() -> None:
    memory = plan([DEAD], {}, T0, REPEAT).memory
    later = plan([DEAD], memory, T0 + REPEAT - timedelta(seconds=1), REPEAT)
    assert later.messages == []
    assert later.memory == memory


def test_a_lasting_condition_is_said_again_after_the_repeat_time() -> None:
    memory = plan([DEAD], {}, T0, REPEAT).memory
    again = plan([DEAD], memory, T0 + REPEAT, REPEAT)
    assert [m.title for m in again.messages] == ["2 command(s) dead (still)"]
    assert again.memory["sent"]["dead_commands"] == (T0 + REPEAT).isoformat()


def test_an_ended_condition_is_said_resolved_once_and_forgotten() -> None:
    memory = plan([DEAD, SILENT], {}, T0, REPEAT).memory
    ended = plan([SILENT], memory, T0 + timedelta(minutes=1), REPEAT)
    assert [(m.key, m.level) for m in ended.messages] == [("dead_commands", "success")]
    assert set(ended.memory["sent"]) == {"silence:stripe"}
    assert plan([SILENT], ended.memory, T0 + timedelta(minutes=2), REPEAT).messages == []
