"""``/v1/sessions`` (session documents) and ``/v1/session_manager`` (entities, resolution, search, deletion),
FACTS 4. Session documents are also readable and searchable through the generic asset routes (type ``sessions``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, Query
from pydantic import BaseModel, Field

from scenebase.api.deps import get_principal, get_runtime, requires
from scenebase.api.routing import SlashAgnosticRouter
from scenebase.api.schemas.common import JobStarted
from scenebase.api.schemas.sessions import (
    EntitiesAdded,
    EntityItem,
    FieldValues,
    MeasurementsAdded,
    MeasurementsBody,
    ResolutionStatus,
    ScenarioSearchBody,
    SessionCreated,
    SessionDocument,
    SessionEntity,
    SessionIntervals,
    SessionName,
    TimeseriesInterval,
)
from scenebase.domain.roles import Permission
from scenebase.runtime import Runtime
from scenebase.services.identity import Principal
from scenebase.services.sessions import standardized_session_name

router = SlashAgnosticRouter(prefix="/v1", tags=["sessions"])
#: documented, not re-validated: metadata routes may have written any value into a session document
SESSION_DOCUMENT: dict[int | str, dict[str, Any]] = {
    200: {"model": SessionDocument, "description": "The session document as stored."}
}


class NewSession(BaseModel):
    session_name: str
    session_type: str = "generic"
    session_aux_metadata: dict[str, Any] | None = None
    status: str = "ready"
    set_id: str | None = None
    resolution: float | None = None
    raise_if_session_exists: bool = False


class NameBody(BaseModel):
    session_name: str


class TimeSpan(BaseModel):
    session_uid: str
    session_start_time: Any
    session_end_time: Any


class SourceData(BaseModel):
    session_uid: str
    source_data: list[dict[str, Any]] = Field(default_factory=list)
    sensors: list[dict[str, Any]] = Field(default_factory=list)
    replace: bool = True


class AuxiliaryData(BaseModel):
    session_uid: str
    auxiliary_data: list[dict[str, Any]]
    replace: bool = True


class EnrichmentsConfigs(BaseModel):
    session_uid: str
    enrichments_configs: list[dict[str, Any]]
    replace: bool = True


class Comments(BaseModel):
    # checked by the service after the session is found (an unknown session is a 404 whatever the body)
    intervals: list[Any] | None = None
    texts: list[Any] | None = None


class EntityList(BaseModel):
    entity_dicts: list[EntityItem]


class OneEntity(BaseModel):
    entity_dict: EntityItem


class FieldData(BaseModel):
    search_dic: ScenarioSearchBody | None = None
    session_fields: list[str] | None = None


class Timeseries(BaseModel):
    search: ScenarioSearchBody | None = None
    fields: list[str] | None = None


# ---------------------------------------------------------------------------------------------- documents


@router.post("/sessions/add/", response_model=SessionCreated, dependencies=[requires(Permission.INGEST)])
def add_session(body: NewSession, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> Any:
    """Create a session; an existing name answers its uid with ``created: false`` (409 with
    raise_if_session_exists)."""
    uid, created = rt.sessions.create(p.scope, body.session_name, body.session_type, body.resolution,
                                      body.session_aux_metadata, body.status, body.set_id,
                                      body.raise_if_session_exists)  # fmt: skip
    return {"session_uid": uid, "created": created}


@router.post("/sessions/standardize_name/", response_model=SessionName, dependencies=[requires(Permission.READ)])
def standardize_name(body: NameBody) -> Any:
    """The session name with special characters replaced by ``_``, lower case."""
    return {"session_name": standardized_session_name(body.session_name)}


@router.post(
    "/sessions/update_time_span/",
    response_model=None,
    responses=SESSION_DOCUMENT,
    dependencies=[requires(Permission.INGEST)],
)
def update_time_span(body: TimeSpan, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> Any:
    """Set the session's start and end (times with a time zone); answers the session document."""
    return rt.sessions.update_time_span(p.scope, body.session_uid, body.session_start_time, body.session_end_time)


@router.post(
    "/sessions/add_source_data/",
    response_model=None,
    responses=SESSION_DOCUMENT,
    dependencies=[requires(Permission.INGEST)],
)
def add_source_data(body: SourceData, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> Any:
    """Set (replace) or extend the session's ``source_data`` and ``sensors``; answers the session document."""
    return rt.sessions.add_source_data(p.scope, body.session_uid, body.source_data, body.sensors, body.replace)


@router.post(
    "/sessions/add_auxiliary_data/",
    response_model=None,
    responses=SESSION_DOCUMENT,
    dependencies=[requires(Permission.INGEST)],
)
def add_auxiliary_data(
    body: AuxiliaryData, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Any:
    """Set (replace) or extend the session's ``auxiliary_data``; answers the session document."""
    return rt.sessions.add_auxiliary_data(p.scope, body.session_uid, body.auxiliary_data, body.replace)


@router.post(
    "/sessions/add_enrichments_configs/",
    response_model=None,
    responses=SESSION_DOCUMENT,
    dependencies=[requires(Permission.INGEST)],
)
def add_enrichments_configs(
    body: EnrichmentsConfigs, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Any:
    """Set (replace) or extend the session's ``enrichments_configs``; answers the session document."""
    return rt.sessions.add_enrichments_configs(p.scope, body.session_uid, body.enrichments_configs, body.replace)


@router.post("/sessions/{session_uid}/comments", response_model=JobStarted, dependencies=[requires(Permission.INGEST)])
def add_comments(
    session_uid: str, body: Comments, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Any:
    """Add comments over time intervals (a job): ``comment`` and ``commentator`` state-set entities."""
    return {"job_id": rt.sessions.add_comments(p.scope, session_uid, body.intervals, body.texts)}


# ---------------------------------------------------------------------------------------------- entities


@router.post("/session_manager/add_entities/", response_model=EntitiesAdded, dependencies=[requires(Permission.INGEST)])
def add_entities(
    body: EntityList,
    urgent: bool = Query(False),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Any:
    """Store entities; ``{"acknowledged", "accepted", "rejected": [{"index", "entity_id", "error"}]}``. Without
    ``urgent`` the sessions resolve by themselves once writes pause."""
    return rt.sessions.add_entities(p.scope, body.entity_dicts, urgent)


@router.post("/session_manager/add_entity/", response_model=EntitiesAdded, dependencies=[requires(Permission.INGEST)])
def add_entity(
    body: OneEntity,
    urgent: bool = Query(False),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Any:
    """One entity (the older route); answers like add_entities."""
    return rt.sessions.add_entities(p.scope, [body.entity_dict], urgent)


@router.post(
    "/session_manager/add_measurements/{session_uid}",
    response_model=MeasurementsAdded,
    dependencies=[requires(Permission.INGEST)],
)
def add_measurements(
    session_uid: str,
    body: Annotated[MeasurementsBody, Body()],
    urgent: bool = Query(False),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Any:
    """A table of measurements (``add_df``), column by column: ``{"timestamps": [...], "columns": {name:
    {"entity_type": "scalar"|"state"|"geo", "values": [...] | "lat"/"lon": [...]}}}``."""
    return rt.sessions.add_measurements(p.scope, session_uid, body, urgent)


@router.get(
    "/session_manager/entities/{session_uid}",
    response_model=None,
    responses={200: {"model": list[SessionEntity], "description": "Entities in write order."}},
    dependencies=[requires(Permission.READ)],
)
def entities(
    session_uid: str,
    limit: int = Query(10_000, ge=1, le=100_000),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Any:
    """The session's raw entities (first ``limit``, in write order) as entity dicts."""
    return rt.sessions.entities(p.scope, session_uid, limit)


# ---------------------------------------------------------------------------------------------- resolution


@router.post(
    "/session_manager/resolve_session/{session_uid}",
    response_model=JobStarted,
    dependencies=[requires(Permission.INGEST)],
)
def resolve_session(
    session_uid: str,
    resolution: float | None = Query(None, gt=0),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Any:
    """Resolve the session's entities onto its grid now (a ``session_resolution`` job)."""
    return {"job_id": rt.timeline.resolve(p.scope, session_uid, resolution)}


@router.get(
    "/session_manager/resolution_status/{session_uid}",
    response_model=ResolutionStatus,
    dependencies=[requires(Permission.READ)],
)
def resolution_status(
    session_uid: str, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Any:
    """``ready``, the pending resolution job's status, or ``unresolved`` (urgent writes wait for a resolve)."""
    return {"status": rt.timeline.status(p.scope, session_uid)}


@router.delete(
    "/session_manager/delete_session/{session_uid}",
    response_model=JobStarted,
    dependencies=[requires(Permission.DELETE)],
)
def delete_session(
    session_uid: str,
    delete_assets_contents: bool = Query(True),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Any:
    """Delete the session, its entities and timeline (a job); with ``delete_assets_contents`` its media too."""
    return {"job_id": rt.sessions.delete(p.scope, session_uid, delete_assets_contents)}


# ---------------------------------------------------------------------------------------------- search


@router.post(
    "/session_manager/search/", response_model=dict[str, SessionIntervals], dependencies=[requires(Permission.READ)]
)
def search(
    search: ScenarioSearchBody | None = Body(None),
    p: Principal = Depends(get_principal),
    rt: Runtime = Depends(get_runtime),
) -> Any:
    """Scenario search: ``{session_uid: {"intervals": [[start, end], ...]}}`` where every condition holds
    (see ``domain/timeline_search.py`` for the query)."""
    return rt.timeline.search(p.scope, search)


@router.post(
    "/session_manager/field_data/{session_uid}",
    response_model=None,
    responses={200: {"model": FieldValues, "description": "Values per field, aligned with `timestamp`."}},
    dependencies=[requires(Permission.READ)],
)
def field_data(
    session_uid: str, body: FieldData, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)
) -> Any:
    """Resolved values of ``session_fields`` (``["*"]``: all) with ``time_index`` and ``timestamp``, in the
    search's ``time_range`` (whole session without one)."""
    query = rt.timeline.parse(body.search_dic)
    return rt.timeline.field_data(p.scope, session_uid, body.session_fields, query.time_range)


@router.post(
    "/session_manager/timeseries/",
    response_model=None,
    responses={
        200: {"model": dict[str, list[TimeseriesInterval]], "description": "Per session uid, its matching intervals."}
    },
    dependencies=[requires(Permission.READ)],
)
def timeseries(body: Timeseries, p: Principal = Depends(get_principal), rt: Runtime = Depends(get_runtime)) -> Any:
    """``download_timeseries``: per matching session, per interval, the fields' values and timestamps."""
    return rt.timeline.timeseries(p.scope, body.search, body.fields)
