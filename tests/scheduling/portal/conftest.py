"""The clock of the portal's agenda tests."""

import pytest

from tests.scheduling.portal.agenda import NOW


@pytest.fixture
def frozen_now(time_machine):
    """The clock stopped at ``agenda.NOW`` (Monday 2 March 2026, 09:00 in São Paulo)."""
    time_machine.move_to(NOW, tick=False)
    return time_machine
