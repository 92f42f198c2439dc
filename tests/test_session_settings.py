"""The session holds the effective settings the views and the model follow (issue 33): mirror
averaging is what the person asked for and what the model can do, announced when it changes."""

from __future__ import annotations

from drr_studio.session import Session
from model.options import MIRROR_AVERAGE


def test_mirror_averaging_is_the_effective_value_and_the_choice_is_kept():
    s = Session()
    heard: list[bool] = []
    s.mirror_changed.connect(heard.append)
    assert s.mirror_average is MIRROR_AVERAGE
    s.set_mirror_average(True)
    s.set_mirror_possible(False)  # a model without left/right order
    assert s.mirror_average is False and s.mirror_wanted is True
    s.set_mirror_average(True)  # asking again changes nothing while it cannot
    s.set_mirror_possible(True)  # a model that mirrors: the choice comes back
    assert s.mirror_average is True
    s.set_mirror_average(False)
    assert heard == ([True] if not MIRROR_AVERAGE else []) + [False, True, False]
