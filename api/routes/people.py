"""The staff directory, for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import ActorDep, NowDep, ReaderDep, ReadTransactionDep, SettingsDep, TransactionDep
from api.errors import problem_responses
from api.schemas import PeopleList, PersonChangeOut, PersonHistory, PersonIn, PersonOut, PersonPatch
from dispute_service import people

router = APIRouter(prefix="/api/v1/people", tags=["people"])


def _out(person: object) -> PersonOut:
    return PersonOut.model_validate(person, from_attributes=True)


@router.get(
    "", response_model=PeopleList, responses=problem_responses(401, 403), summary="The staff directory"
)
async def list_(actor: ReaderDep, tx: ReadTransactionDep) -> PeopleList:
    found = await tx.finish(people.list_people, actor)
    return PeopleList(items=[_out(p) for p in found], total=len(found))


@router.post(
    "",
    status_code=201,
    response_model=PersonOut,
    responses=problem_responses(401, 403, 409, 422),
    summary="Add a person",
)
async def add(
    body: PersonIn, actor: ActorDep, tx: TransactionDep, now: NowDep, settings: SettingsDep
) -> PersonOut:
    data = people.PersonData(
        name=body.name, email=str(body.email), roles=list(body.roles), active=body.active
    )
    return _out(await tx.finish(people.add_person, actor, data, now, audit_key=settings.audit_key))


@router.patch(
    "/{email}",
    response_model=PersonOut,
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Change a person's name, roles or active flag",
)
async def patch(
    email: Annotated[str, Path(max_length=320)],
    body: PersonPatch,
    actor: ActorDep,
    tx: TransactionDep,
    now: NowDep,
    settings: SettingsDep,
) -> PersonOut:
    roles: list[str] | None = list(body.roles) if body.roles is not None else None
    return _out(
        await tx.finish(
            people.update_person,
            actor,
            email,
            now,
            name=body.name,
            roles=roles,
            active=body.active,
            audit_key=settings.audit_key,
        )
    )


@router.get(
    "/{email}/history",
    response_model=PersonHistory,
    responses=problem_responses(401, 403, 404, 422),
    summary="Every change to a person, oldest first",
)
async def history(
    email: Annotated[str, Path(max_length=320)], actor: ReaderDep, tx: ReadTransactionDep
) -> PersonHistory:
    changes = await tx.finish(people.person_history, actor, email)
    return PersonHistory(email=email.strip().lower(), items=[PersonChangeOut.of(c) for c in changes])
