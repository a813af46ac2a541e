from __future__ import annotations

import pytest

from dispute_service.access import (
    REPORT_READER_ROLES,
    SYSTEM,
    Actor,
    acting_role,
    require_admin,
    require_report_reader,
)
from dispute_service.errors import Forbidden
from dispute_service.models import Dispute
from tests.factories import IRO, IRO_EMAIL


def _someone(*roles: str) -> Actor:
    return Actor("someone@example.gov.uk", frozenset(roles))


@pytest.mark.parametrize("role", REPORT_READER_ROLES)
def test_managers_may_read_the_report(role: str) -> None:
    require_report_reader(_someone(role))


@pytest.mark.parametrize("role", ["iro", "team_manager", "head_of_corporate_parenting"])
def test_others_may_not(role: str) -> None:
    with pytest.raises(Forbidden, match="may not read the annual report"):
        require_report_reader(_someone(role))


def test_only_admins_keep_the_directory_and_the_outbox() -> None:
    require_admin(_someone("admin"), "list people")
    for role in ("iro_manager", "iro", "assistant_director"):
        with pytest.raises(Forbidden, match="only an admin"):
            require_admin(_someone(role), "list people")


def test_the_scheduler_acts_in_no_role() -> None:
    dispute = Dispute(iro_email=IRO_EMAIL, owner_email=None, owner_role="team_manager")
    assert acting_role(dispute, SYSTEM) is None
    assert acting_role(dispute, _someone("team_manager")) == "team_manager"
    assert acting_role(dispute, IRO) == "iro"
