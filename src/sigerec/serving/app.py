"""The HTTP interface of a `RecommendationService` (FastAPI); `sigerec serve` runs it with uvicorn.

Routes (interactive documentation at ``/docs``, the schema at ``/openapi.json``):

- ``GET  /health``                               ``{"status": "ok"}``
- ``GET  /users/{user_id}/recommendations?k=10``  a known user's top-k, training items excluded
- ``POST /recommendations``  ``{"items": [...], "k": 10}``  a new user folded in from the items they liked
- ``GET  /items/{item_id}/similar?k=10``          the items closest to one item
- ``GET  /model``                                 what is served: model, dataset, sizes, metrics, index

Every result is a JSON list of ``{"item_id", "score", "title"}``, best first; ``title`` is always
present and ``null`` when the model folder has no title for the item. Ids are the raw ids of the
training data, as strings (URL-encode ids that hold ``/``, ``?`` or ``#``). An unknown id answers
404, a bad ``k`` (outside 1..max_k) or a malformed body 422, each with a ``detail`` that says what
was wrong.

The service is read-only after construction and each request keeps its state in local
variables, so requests may be answered concurrently; `create_app` says where they run and why.
Everything about the server process (sockets, threads, workers) is in ``server.py``.
"""

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

import sigerec
from sigerec.serving.service import Recommendation, RecommendationService, UnknownIdError

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
    n_users: int
    n_items: int
    dim: int = Field(description="Size of the user and item vectors.")
    index: str = Field(description="How the top-k items are found: exact, faiss or faiss-ivf.")
    max_k: int = Field(description="The largest k a request may ask for.")


class Health(BaseModel):
    status: str = "ok"


class ErrorDetail(BaseModel):
    detail: Any = Field(description="What was wrong: a sentence, or FastAPI's list of invalid fields.")


def _call(rank: Callable[[], list[Recommendation]]) -> list[Recommendation]:
    """Run one service call and map its errors: unknown ids -> 404, invalid arguments -> 422."""
    try:
        return rank()
    except UnknownIdError as error:
        raise HTTPException(status_code=404, detail=str(error)) from None
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None


def create_app(service: RecommendationService, in_threadpool: bool | None = None) -> FastAPI:
    """The FastAPI application answering from ``service``.

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
    """
    max_k = service.max_k
    metadata = service.metadata()
    if in_threadpool is None:
        in_threadpool = metadata["n_items"] * metadata["dim"] > THREADPOOL_ABOVE_FLOATS
    app = FastAPI(
        title=f"sigerec: {metadata['model']} trained on {metadata['dataset']}",
        version=sigerec.__version__,
        description=(
            "Top-k recommendations from an exported sigerec model. Unknown ids answer 404; "
            f"k outside 1..{max_k} or a malformed body answers 422."
        ),
    )
    app.state.service = service

    async def answer(rank: Callable[[], list[Recommendation]]) -> list[Recommendation]:
        if in_threadpool:
            return await run_in_threadpool(_call, rank)
        return _call(rank)

    K = Annotated[int, Query(ge=1, le=max_k, description=f"How many items to return (1..{max_k}).")]
    ranked = {
        "response_model": list[ScoredItem],
        "responses": {404: {"model": ErrorDetail, "description": "Unknown id"}, 422: {"model": ErrorDetail}},
    }

    @app.get("/health", response_model=Health, summary="Liveness check")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/users/{user_id:path}/recommendations", summary="Top-k items for a known user", **ranked)
    async def recommend_for_user(
        user_id: Annotated[str, Path(description="The user's raw id from the training data.")], k: K = 10
    ) -> list[Recommendation]:
        """The user's highest-scoring items, excluding the items they had in training."""
        return await answer(lambda: service.for_user(user_id, k))

    class NewUserRequest(BaseModel):
        """A user the model has not seen, described by the items they liked."""

        # Defined here because k's upper bound is the served model's.
        model_config = ConfigDict(extra="forbid")
        items: list[str] = Field(min_length=1, description="Raw ids of the items the user liked (at least one).")
        k: int = Field(10, ge=1, le=max_k, description=f"How many items to return (1..{max_k}).")

    @app.post("/recommendations", summary="Top-k items for a new user, from the items they liked", **ranked)
    async def recommend_for_items(request: Annotated[NewUserRequest, Body()]) -> list[Recommendation]:
        """Folds in a user the model has not seen from the items they liked; those items are excluded."""
        return await answer(lambda: service.for_items(request.items, request.k))

    @app.get("/items/{item_id:path}/similar", summary="The items most similar to one item", **ranked)
    async def similar_items(
        item_id: Annotated[str, Path(description="The item's raw id from the training data.")], k: K = 10
    ) -> list[Recommendation]:
        """The items whose vectors are closest (cosine) to this item's; the item itself is excluded."""
        return await answer(lambda: service.similar_items(item_id, k))

    @app.get("/model", response_model=ModelInfo, summary="What is served")
    async def model_info() -> dict:
        """The model, its dataset, sizes, test metrics, the index kind and the largest k."""
        return {**metadata, "max_k": max_k}

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's answer, plus the likely cause when a body came without a JSON content type
        # (e.g. `curl -d`): FastAPI then does not parse it, and its message alone does not say why.
        detail = jsonable_encoder(error.errors())
        content_type = request.headers.get("content-type", "")
        if request.method == "POST" and "json" not in content_type:
            hint = "send the body as JSON with the header Content-Type: application/json"
            detail.insert(
                0, {"type": "content_type", "loc": ["header", "content-type"], "msg": hint, "input": content_type}
            )
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        # A bug, not a bad request. Logged here in one line; Starlette re-raises the error after
        # this answer, so uvicorn logs its traceback. JSON so that every answer parses the same way.
        logger.error("unexpected %s in %s %s", type(error).__name__, request.method, request.url.path)
        return JSONResponse({"detail": "internal server error; the server log has the details"}, status_code=500)

    return app
