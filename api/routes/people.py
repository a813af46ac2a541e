"""The staff directory, for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ActorDep, NowDep, SessionsDep
from api.errors import problem_responses
from api.schemas import PeopleList, PersonIn, PersonOut, PersonPatch
from dispute_service import people
from dispute_service.models import Person

router = APIRouter(prefix="/api/v1/people", tags=["people"])


def _out(p: Person) -> PersonOut:
    return PersonOut(name=p.name, email=p.email, roles=p.roles, active=p.active)


@router.get(
    "", response_model=PeopleList, responses=problem_responses(401, 403), summary="The staff directory"
)
def list_(actor: ActorDep, sessions: SessionsDep) -> PeopleList:
    people.require_admin(actor.roles, "list people")
    found = people.list_people(sessions)
    return PeopleList(items=[_out(p) for p in found], total=len(found))


@router.post(
    "",
    status_code=201,
    response_model=PersonOut,
    responses=problem_responses(401, 403, 409, 422),
    summary="Add a person",
)
def add(body: PersonIn, actor: ActorDep, sessions: SessionsDep, now: NowDep) -> PersonOut:
    people.require_admin(actor.roles, "add people")
    data = people.PersonData(
        name=body.name, email=str(body.email), roles=list(body.roles), active=body.active
    )
    return _out(people.add_person(sessions, data, now))


@router.patch(
    "/{email}",
    response_model=PersonOut,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Change a person's name, roles or active flag",
)
def patch(
    email: Annotated[str, Path(max_length=320)],
    body: PersonPatch,
    actor: ActorDep,
    sessions: SessionsDep,
    now: NowDep,
) -> PersonOut:
    people.require_admin(actor.roles, "change people")
    roles: list[str] | None = list(body.roles) if body.roles is not None else None
    return _out(people.update_person(sessions, email, now, name=body.name, roles=roles, active=body.active))
