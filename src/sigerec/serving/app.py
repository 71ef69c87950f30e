"""The HTTP interface of an exported model (FastAPI); `sigerec serve` runs it with uvicorn.

Routes (interactive documentation at ``/docs``, served offline; the schema at ``/openapi.json``):

- ``GET  /health``                               ``{"status": "ok"}`` (never needs the API key)
- ``GET  /users/{user_id}/recommendations?k=10``  a known user's top-k, training items excluded
- ``POST /recommendations``  ``{"items": [...], "k": 10}``  a new user folded in from the items they liked
- ``GET  /items/{item_id}/similar?k=10``          the items closest to one item
- ``GET  /model``                                 what is served: model, version, sizes, metrics, index
- ``GET  /metrics``                               Prometheus metrics of this server process
- ``POST /admin/reload``  ``{"model_dir": ...}``   switch to a new export without downtime
- ``POST /items``  ``{"items": [{...}, ...]}``      add new items without retraining (``new_items.py``)

Every result is a JSON list of ``{"item_id", "score", "title"}``, best first; ``title`` is always
present and ``null`` when the model folder has no title for the item. Ids are the raw ids of the
training data, as strings (URL-encode ids that hold ``/``, ``?`` or ``#``). Errors are JSON
``{"detail": ...}``: 400 a body that is not JSON, 401 a missing or wrong API key, 403 an admin
route on a server without a key (or ``POST /items`` to a model that cannot take new items), 404
an unknown id, 409 a reload refused or an item id that exists, 413 a body over the size limit,
422 a bad ``k`` or body. Every status
is listed per route in the OpenAPI schema, whose examples are real ids of the served model.

Requests read the current model once when they start (``ModelHolder``), so a reload never
changes a request midway, and requests may be answered concurrently; `create_app` says where.
What every request passes through (request id, key, size limit, metrics, access log) is in
``request_guard.py``; the server process (sockets, workers, signals) is in ``server.py``.
"""

import asyncio
import contextlib
import copy
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StringConstraints

import sigerec
from sigerec.errors import SigerecError
from sigerec.serving.cold_items import CannotAddItemsError
from sigerec.serving.metrics import CONTENT_TYPE, ServerMetrics
from sigerec.serving.model_holder import LoadedModel, ModelHolder, load_model
from sigerec.serving.new_items import EncoderPaths, ExistingItemError, InvalidItemsError
from sigerec.serving.offline_docs import add_offline_docs
from sigerec.serving.request_guard import PUBLIC_PATHS, RequestGuard
from sigerec.serving.service import Recommendation, RecommendationService, UnknownIdError
from sigerec.serving.settings import ServerSettings

logger = logging.getLogger("sigerec.serving")

# Catalogues above this many item-vector floats (about 2 ms of ranking on one core) are ranked
# in the thread pool rather than on the event loop; see `create_app`.
THREADPOOL_ABOVE_FLOATS = 8_000_000


class ScoredItem(BaseModel):
    """One recommended item, best first in its list."""

    model_config = ConfigDict(from_attributes=True)  # read from the service's Recommendation objects

    item_id: str = Field(description="The item's raw id, as in the training data.")
    score: float = Field(description="The model's score (inner product of the vectors); higher is better.")
    title: str | None = Field(description="The item's title from the items file given at export; null when unknown.")


class ModelInfo(BaseModel):
    """What the server serves; keys beyond these come from the model folder's manifest."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(description="The model's registry name, e.g. lightgcn.")
    dataset: str | None = Field(description="The dataset it was trained on.")
    version: str = Field(description="Changes with every export: the first 16 hex digits of the manifest's sha256.")
    loaded_at: str = Field(description="When this server loaded the model (UTC).")
    n_users: int
    n_items: int
    dim: int = Field(description="Size of the user and item vectors.")
    index: str = Field(description="How the top-k items are found: exact, faiss or faiss-ivf.")
    max_k: int = Field(description="The largest k a request may ask for.")


class Health(BaseModel):
    status: str = "ok"


class ErrorDetail(BaseModel):
    detail: Any = Field(description="What was wrong: a sentence, or FastAPI's list of invalid fields.")


class ReloadRequest(BaseModel):
    """Which model folder to switch to; without ``model_dir`` the folder being served is read again."""

    model_config = ConfigDict(extra="forbid")
    model_dir: str | None = Field(None, max_length=4096, description="A model folder made by `sigerec export`.")


class ItemsAdded(BaseModel):
    """What ``POST /items`` did."""

    added: int = Field(description="How many items were added.")
    n_items: int = Field(description="How many items the model has now.")
    version: str = Field(description="The model's new version (as in GET /model).")


def _error(description: str) -> dict:
    return {"model": ErrorDetail, "description": description}


NOT_JSON = {400: _error("The body is not JSON (or not UTF-8)")}
TOO_LARGE = {413: _error("The body is larger than the server's limit")}
INVALID = {422: _error("A parameter or body field is invalid or unknown; detail says which")}
UNKNOWN_ID = {404: _error("Unknown user or item id")}


def _call(rank: Callable[[], list[Recommendation]]) -> list[Recommendation]:
    """Run one service call and map its errors: unknown ids -> 404, invalid arguments -> 422."""
    try:
        return rank()
    except UnknownIdError as error:
        raise HTTPException(status_code=404, detail=str(error)) from None
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None


def create_app(
    model: LoadedModel | RecommendationService,
    in_threadpool: bool | None = None,
    settings: ServerSettings | None = None,
    handle_sighup: bool = False,
) -> FastAPI:
    """The FastAPI application answering from ``model`` (replaceable later by a reload).

    The endpoints are ``async def``. By default they call the service directly on the event
    loop: a ranking over a catalogue like Clothing's (23,033 items x 64) takes about 0.3 ms, and
    the thread-pool hop of plain ``def`` endpoints cost more than it saved, 25-60% more server
    CPU per request on 2 cores (measured with benchmarks/serving_load.py). Above ``THREADPOOL_ABOVE_FLOATS`` item-vector
    floats (or with ``in_threadpool=True``) the ranking runs in the thread pool instead, so that
    slow rankings neither hold up other requests nor leave the other cores idle (NumPy and FAISS
    release the GIL). Either way nothing is shared between requests but the read-only service.

    Results are returned as the service's `Recommendation` objects and serialised through the
    `ScoredItem` response model (pydantic's Rust serialiser): as fast as writing the JSON by hand
    in the same benchmark, and the schema in /docs is the one that is enforced.

    ``handle_sighup``: reload the served folder on SIGHUP (only for the server's main thread).
    """
    settings = settings or ServerSettings()
    if isinstance(model, RecommendationService):
        model = LoadedModel.of_service(model)
    holder = ModelHolder(model, index=settings.index, max_k=settings.max_k)
    model.service.max_k = settings.max_k
    metrics = ServerMetrics()
    metrics.set_model(model.metadata())
    max_k, max_items = settings.max_k, settings.max_items
    app = FastAPI(
        title=f"sigerec: {model.service.folder.manifest.get('model')} trained on {model.service.folder.manifest.get('dataset')}",
        version=sigerec.__version__,
        description=(
            "Top-k recommendations from an exported sigerec model. Unknown ids answer 404; "
            f"k outside 1..{max_k} or an invalid body 422; a body that is not JSON 400; "
            f"a body over {settings.max_body_bytes} bytes 413"
            + ("; every route but /health needs the API key (401 without it)." if settings.api_key else ".")
        ),
        docs_url=None,
        redoc_url=None,
        lifespan=_reload_on_sighup(lambda: reload) if handle_sighup else None,
    )
    app.state.holder = holder

    async def answer(rank: Callable[[LoadedModel], list[Recommendation]]) -> list[Recommendation]:
        current = holder.current  # read once: a reload during this request does not affect it
        threaded = in_threadpool
        if threaded is None:
            threaded = current.service.folder.item_vectors.size > THREADPOOL_ABOVE_FLOATS
        if threaded:
            return await run_in_threadpool(_call, lambda: rank(current))
        return _call(lambda: rank(current))

    K = Annotated[int, Query(ge=1, le=max_k, description=f"How many items to return (1..{max_k}).")]
    ranked = {"response_model": list[ScoredItem], "responses": {**UNKNOWN_ID, **INVALID}}
    ItemId = Annotated[str, StringConstraints(min_length=1, max_length=settings.max_id_length)]

    @app.get("/health", response_model=Health, summary="Liveness check")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/users/{user_id:path}/recommendations", summary="Top-k items for a known user", **ranked)
    async def recommend_for_user(
        user_id: Annotated[str, Path(description="The user's raw id from the training data.")], k: K = 10
    ) -> list[Recommendation]:
        """The user's highest-scoring items, excluding the items they had in training."""
        return await answer(lambda current: current.service.for_user(user_id, k))

    class NewUserRequest(BaseModel):
        """A user the model has not seen, described by the items they liked."""

        # Defined here because k's and items' bounds are the server's settings.
        model_config = ConfigDict(extra="forbid")
        items: list[ItemId] = Field(
            min_length=1, max_length=max_items, description=f"Raw ids of the items the user liked (1..{max_items})."
        )
        k: int = Field(10, ge=1, le=max_k, description=f"How many items to return (1..{max_k}).")

    @app.post(
        "/recommendations",
        summary="Top-k items for a new user, from the items they liked",
        response_model=list[ScoredItem],
        responses={**NOT_JSON, **UNKNOWN_ID, **TOO_LARGE, **INVALID},
    )
    async def recommend_for_items(request: Annotated[NewUserRequest, Body()]) -> list[Recommendation]:
        """Folds in a user the model has not seen from the items they liked; those items are excluded."""
        return await answer(lambda current: current.service.for_items(request.items, request.k))

    @app.get("/items/{item_id:path}/similar", summary="The items most similar to one item", **ranked)
    async def similar_items(
        item_id: Annotated[str, Path(description="The item's raw id from the training data.")], k: K = 10
    ) -> list[Recommendation]:
        """The items whose vectors are closest (cosine) to this item's; the item itself is excluded."""
        return await answer(lambda current: current.service.similar_items(item_id, k))

    @app.get("/model", response_model=ModelInfo, summary="What is served")
    async def model_info() -> dict:
        """The model, its version, dataset, sizes, test metrics, the index kind and the largest k."""
        return holder.current.metadata()

    @app.get(
        "/metrics",
        summary="Prometheus metrics of this server process",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics() -> Response:
        """Requests by route and status, latency histograms, the model's version and size, reloads."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    async def reload(model_dir: str | None) -> dict:
        if settings.reload_by_supervisor:
            return await _reload_workers(holder, model_dir, settings)
        try:
            new = await holder.reload(model_dir)
        except SigerecError as error:
            metrics.reloads.labels("refused").inc()
            logger.warning("reload refused, the old model keeps serving: %s", error)
            raise HTTPException(409, f"reload refused, the old model keeps serving: {error}") from None
        metrics.reloads.labels("ok").inc()
        metrics.set_model(new.metadata())
        logger.info("reloaded %s (version %s)", new.model_dir, new.version)
        return new.metadata()

    @app.post(
        "/admin/reload",
        summary="Switch to a new model export without downtime",
        response_model=ModelInfo,
        responses={
            **NOT_JSON,
            403: _error("Reloads over HTTP need the server to have an API key"),
            409: _error("The new folder failed its checks; the old model keeps serving"),
            **TOO_LARGE,
            **INVALID,
        },
    )
    async def admin_reload(request: Annotated[ReloadRequest | None, Body()] = None) -> dict:
        """Loads and checks the folder beside the served model, then swaps it in; requests already
        in flight finish on the old one. A folder that fails its checks is refused (409)."""
        if settings.api_key is None:
            raise HTTPException(403, "start the server with --api-key-file (or SIGEREC_API_KEY) to reload over HTTP.")
        return await reload(request.model_dir if request else None)

    class NewItemsRequest(BaseModel):
        """New items, each an object with the fields of the item file the model's features were
        encoded from (its id column and content columns: GET /model's ``new_item_fields``)."""

        model_config = ConfigDict(extra="forbid")
        items: list[dict[str, str | StrictInt | StrictFloat]] = Field(
            min_length=1,
            max_length=settings.max_new_items,
            description=f"The new items (1..{settings.max_new_items}); values are strings or numbers.",
        )

    encoder_paths = EncoderPaths.from_environment()

    @app.post(
        "/items",
        summary="Add new items without retraining",
        response_model=ItemsAdded,
        responses={
            **NOT_JSON,
            403: _error(
                "The server has no API key, or its model cannot take new items (an ID-only model, "
                "another cold-item rule, an encoder missing on this machine); detail says which"
            ),
            409: _error("An item id is already in the model, or given twice"),
            **TOO_LARGE,
            422: _error("A body field is invalid, an item lacks a field or has no content"),
        },
    )
    async def add_new_items(request: Annotated[NewItemsRequest, Body()]) -> dict:
        """Encodes the items as the model's features were encoded, gives each the vector of the
        model's cold-item rule (the mean vector of its most similar warm items), saves the model
        folder's new version and serves it at once: the items appear in recommendations and
        similar items. Requests in flight finish on the old model; additions run one at a time."""
        if settings.api_key is None:
            raise HTTPException(
                403, "start the server with --api-key-file (or SIGEREC_API_KEY) to add items over HTTP."
            )
        try:
            new = await holder.add_items(request.items, encoder_paths)
        except CannotAddItemsError as error:  # whatever the body: the action is refused (403)
            raise HTTPException(403, str(error)) from None
        except ExistingItemError as error:
            raise HTTPException(409, str(error)) from None
        except InvalidItemsError as error:
            raise HTTPException(422, str(error)) from None
        metrics.set_model(new.metadata())
        n_items = len(new.service.folder.item_ids)
        logger.info("added %d items (%d now, version %s)", len(request.items), n_items, new.version)
        if settings.reload_by_supervisor:  # the other workers read the saved folder again
            os.kill(os.getppid(), signal.SIGHUP)
        return {"added": len(request.items), "n_items": n_items, "version": new.version}

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # A body that is not JSON is a 400 (the request cannot be read), not a 422. Otherwise
        # FastAPI's answer, plus the likely cause when a body came without a JSON content type
        # (e.g. `curl -d`): FastAPI then does not parse it, and its message alone does not say why.
        detail = jsonable_encoder(error.errors())
        if any(entry.get("type") == "json_invalid" for entry in detail):
            return JSONResponse({"detail": detail}, status_code=400)
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and "json" not in content_type:
            hint = "send the body as JSON with the header Content-Type: application/json"
            detail.insert(
                0, {"type": "content_type", "loc": ["header", "content-type"], "msg": hint, "input": content_type}
            )
        return JSONResponse({"detail": detail}, status_code=422)

    add_offline_docs(app)  # after the API's routes, which are then matched first
    _document_examples_and_key(app, holder, settings)
    app.add_middleware(
        RequestGuard,
        api_key=settings.api_key,
        max_body_bytes=settings.max_body_bytes,
        metrics=metrics,
        body_limits={"/items": settings.max_new_items_body_bytes},
    )
    if settings.cors_origins:  # outermost, so that browsers' preflight requests need no key
        app.add_middleware(
            CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
        )  # fmt: skip
    return app


def _reload_on_sighup(get_reload: Callable[[], Callable[[str | None], Any]]):
    """A lifespan that reloads the served folder on SIGHUP while the server runs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task] = set()  # strong references until each reload ends

        async def reload_quietly() -> None:
            try:
                await get_reload()(None)
            except HTTPException:
                pass  # refused: logged by `reload`, the old model keeps serving

        def on_signal() -> None:
            logger.info("SIGHUP: reloading the served model folder")
            task = loop.create_task(reload_quietly())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, on_signal)
        try:
            yield
        finally:
            loop.remove_signal_handler(signal.SIGHUP)

    return lifespan


async def _reload_workers(holder: ModelHolder, model_dir: str | None, settings: ServerSettings) -> dict:
    """With ``--workers N`` each worker holds its own copy: check the folder here, then ask the
    supervisor (uvicorn) to replace the workers one by one, each new one ready before its old
    one stops, which is what it does on SIGHUP."""
    served = holder.current.model_dir
    if model_dir is not None and FilePath(model_dir).resolve() != served:
        raise HTTPException(
            409, f"with --workers > 1 only the served folder {served} can be reloaded; export over it with --force."
        )
    try:
        checked = await asyncio.to_thread(load_model, served, settings.index, settings.max_k)
    except SigerecError as error:
        raise HTTPException(409, f"reload refused, the old model keeps serving: {error}") from None
    os.kill(os.getppid(), signal.SIGHUP)
    return checked.metadata()


def _document_examples_and_key(app: FastAPI, holder: ModelHolder, settings: ServerSettings) -> None:
    """Generate the OpenAPI schema with real ids of the served model as examples (so generated
    clients and fuzzers reach real answers) and, with an API key, the key's schemes and 401."""
    cache: dict[str, Any] = {}

    def schema() -> dict:
        current = holder.current
        if cache.get("version") == current.version:
            return cache["schema"]
        base = cache.get("base") or get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        cache["base"] = base
        document = copy.deepcopy(base)
        user_id, item_id = current.example_ids()
        _add_examples(document, user_id, item_id, current.example_new_item())
        if settings.api_key:
            _add_key_requirement(document)
        cache.update(version=current.version, schema=document)
        return document

    app.openapi = schema


def _add_examples(document: dict, user_id: str, item_id: str, new_item: dict) -> None:
    for operation in _operations(document):
        for parameter in operation.get("parameters", []):
            example = {"user_id": user_id, "item_id": item_id, "k": 10}.get(parameter["name"])
            if example is not None:
                parameter["example"] = example
    request = document["components"]["schemas"].get("NewUserRequest")
    if request is not None:
        request["examples"] = [{"items": [item_id], "k": 10}]
    request = document["components"]["schemas"].get("NewItemsRequest")
    if request is not None:
        request["examples"] = [{"items": [new_item]}]


def _add_key_requirement(document: dict) -> None:
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    }
    missing_key = {"description": "Missing or wrong API key", "content": _error_content()}
    for path, methods in document["paths"].items():
        if path in PUBLIC_PATHS:
            continue
        for operation in methods.values():
            operation["security"] = [{"bearer": []}, {"apiKey": []}]
            operation.setdefault("responses", {})["401"] = missing_key


def _error_content() -> dict:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorDetail"}}}


def _operations(document: dict):
    for methods in document["paths"].values():
        yield from methods.values()
