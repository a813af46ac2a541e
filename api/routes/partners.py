"""Organisations outside the council and their external contacts, for admins (SPEC 10)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ActorDep, NowDep, ReaderDep, ReadTransactionDep, SettingsDep, TransactionDep
from api.errors import problem_responses
from api.schemas import (
    ContactHistory,
    ContactIn,
    ContactList,
    ContactOut,
    ContactPatch,
    OrganisationHistory,
    OrganisationId,
    OrganisationIn,
    OrganisationList,
    OrganisationOut,
    OrganisationPatch,
    PartnerChangeOut,
)
from dispute_service import partners

organisations = APIRouter(prefix="/api/v1/organisations", tags=["organisations"])
contacts = APIRouter(prefix="/api/v1/contacts", tags=["contacts"])


def _organisation(organisation: object) -> OrganisationOut:
    return OrganisationOut.model_validate(organisation, from_attributes=True)


def _contact(contact: object) -> ContactOut:
    return ContactOut.model_validate(contact, from_attributes=True)


@organisations.get(
    "", response_model=OrganisationList, responses=problem_responses(401, 403), summary="The organisations"
)
async def list_organisations(actor: ReaderDep, tx: ReadTransactionDep) -> OrganisationList:
    found = await tx.finish(partners.list_organisations, actor)
    return OrganisationList(items=[_organisation(o) for o in found], total=len(found))


@organisations.post(
    "",
    status_code=201,
    response_model=OrganisationOut,
    responses=problem_responses(401, 403, 409, 422),
    summary="Add an organisation",
)
async def add_organisation(
    body: OrganisationIn, actor: ActorDep, tx: TransactionDep, now: NowDep, settings: SettingsDep
) -> OrganisationOut:
    data = partners.OrganisationData(id=body.id, name=body.name, kind=body.kind)
    return _organisation(
        await tx.finish(partners.add_organisation, actor, data, now, audit_key=settings.audit_key)
    )


@organisations.patch(
    "/{organisation_id}",
    response_model=OrganisationOut,
    responses=problem_responses(401, 403, 404, 422),
    summary="Change an organisation's name or kind",
)
async def patch_organisation(
    organisation_id: Annotated[str, Path(max_length=64)],
    body: OrganisationPatch,
    actor: ActorDep,
    tx: TransactionDep,
    now: NowDep,
    settings: SettingsDep,
) -> OrganisationOut:
    return _organisation(
        await tx.finish(
            partners.update_organisation,
            actor,
            organisation_id,
            now,
            name=body.name,
            kind=body.kind,
            audit_key=settings.audit_key,
        )
    )


@organisations.get(
    "/{organisation_id}/history",
    response_model=OrganisationHistory,
    responses=problem_responses(401, 403, 404, 422),
    summary="Every change to an organisation, oldest first",
)
async def organisation_history(
    organisation_id: Annotated[str, Path(max_length=64)], actor: ReaderDep, tx: ReadTransactionDep
) -> OrganisationHistory:
    changes = await tx.finish(partners.organisation_history, actor, organisation_id)
    return OrganisationHistory(id=organisation_id, items=[PartnerChangeOut.of(c) for c in changes])


@contacts.get(
    "",
    response_model=ContactList,
    responses=problem_responses(401, 403, 422),
    summary="The external contacts, of every organisation or of one",
)
async def list_contacts(
    actor: ReaderDep,
    tx: ReadTransactionDep,
    organisation: Annotated[OrganisationId | None, Query(description="Only this organisation's")] = None,
) -> ContactList:
    found = await tx.finish(partners.list_contacts, actor, organisation)
    return ContactList(items=[_contact(c) for c in found], total=len(found))


@contacts.post(
    "",
    status_code=201,
    response_model=ContactOut,
    responses=problem_responses(401, 403, 409, 422),
    summary="Add an external contact",
)
async def add_contact(
    body: ContactIn, actor: ActorDep, tx: TransactionDep, now: NowDep, settings: SettingsDep
) -> ContactOut:
    data = partners.ContactData(
        name=body.name, email=str(body.email), organisation=body.organisation, active=body.active
    )
    return _contact(await tx.finish(partners.add_contact, actor, data, now, audit_key=settings.audit_key))


@contacts.patch(
    "/{email}",
    response_model=ContactOut,
    responses=problem_responses(401, 403, 404, 422),
    summary="Change an external contact's name, organisation or active flag",
)
async def patch_contact(
    email: Annotated[str, Path(max_length=320)],
    body: ContactPatch,
    actor: ActorDep,
    tx: TransactionDep,
    now: NowDep,
    settings: SettingsDep,
) -> ContactOut:
    return _contact(
        await tx.finish(
            partners.update_contact,
            actor,
            email,
            now,
            name=body.name,
            organisation=body.organisation,
            active=body.active,
            audit_key=settings.audit_key,
        )
    )


@contacts.get(
    "/{email}/history",
    response_model=ContactHistory,
    responses=problem_responses(401, 403, 404, 422),
    summary="Every change to an external contact, oldest first",
)
async def contact_history(
    email: Annotated[str, Path(max_length=320)], actor: ReaderDep, tx: ReadTransactionDep
) -> ContactHistory:
    changes = await tx.finish(partners.contact_history, actor, email)
    return ContactHistory(email=email.strip().lower(), items=[PartnerChangeOut.of(c) for c in changes])
