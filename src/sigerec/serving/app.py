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

The service is read-only after construction and every request keeps its state in local
variables, so the endpoints are plain functions that may run concurrently; see `create_app` for
why they are ``async def``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sigerec.serving.service import UnknownIdError

if TYPE_CHECKING:
    from sigerec.serving.service import Recommendation, RecommendationService

# `sigerec serve --workers N` starts N processes, each of which builds its app from these.
MODEL_DIR_VARIABLE = "SIGEREC_MODEL_DIR"
INDEX_VARIABLE = "SIGEREC_INDEX"

logger = logging.getLogger("sigerec.serving")


class ScoredItem(BaseModel):
    """One recommended item, best first in its list."""

    item_id: str = Field(description="The item's raw id, as in the training data.")
    score: float = Field(description="The model's score (inner product of the vectors); higher is better.")
    title: str | None = Field(description="The item's title from the items file given at export; null when unknown.")


class ModelInfo(BaseModel):
    """What the server serves; keys beyond these come from the model folder's manifest."""

    model_config = ConfigDict(extra="allow")

    n_users: int
    n_items: int
    max_k: int = Field(description="The largest k a request may ask for.")


class Health(BaseModel):
    status: str = "ok"


class ErrorDetail(BaseModel):
    detail: Any = Field(description="What was wrong: a sentence, or FastAPI's list of invalid fields.")


def _ranked_json(recommendations: list[Recommendation]) -> Response:
    """The JSON list that `ScoredItem` documents, built with `json.dumps` directly.

    Building the bytes here skips FastAPI's validation of the return value against the response
    model, which costs more than the ranking itself for k=10 (measured in benchmarks/serving_load.py).
    """
    body = [{"item_id": r.item_id, "score": r.score, "title": r.title} for r in recommendations]
    return Response(json.dumps(body, separators=(",", ":")).encode(), media_type="application/json")


def _answer(rank: Callable[[], list[Recommendation]]) -> Response:
    """Run one service call and map its errors: unknown ids -> 404, invalid arguments -> 422."""
    try:
        return _ranked_json(rank())
    except UnknownIdError as error:
        raise HTTPException(status_code=404, detail=str(error)) from None
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from None


def create_app(service: RecommendationService) -> FastAPI:
    """The FastAPI application answering from ``service``.

    The endpoints are ``async def`` and call the service directly on the event loop: a
    ranking over the catalogue takes a fraction of a millisecond, less than the hop to
    FastAPI's thread pool that a plain ``def`` endpoint pays (twice, with a response model),
    and on 2 cores that hop gave a higher p99 (benchmarks/serving_load.py). Nothing is shared
    between requests except the read-only service.
    """
    max_k = service.max_k
    metadata = service.metadata()
    title = f"sigerec: {metadata.get('model', 'model')} on {metadata.get('dataset', 'dataset')}"
    app = FastAPI(
        title=title,
        version=str(metadata.get("format_version", "")),
        description=(
            "Top-k recommendations from an exported sigerec model. Unknown ids answer 404; "
            f"k outside 1..{max_k} or a malformed body answers 422."
        ),
    )
    app.state.service = service

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
    ) -> Response:
        """The user's highest-scoring items, excluding the items they had in training."""
        return _answer(lambda: service.for_user(user_id, k))

    class NewUserRequest(BaseModel):
        """A user the model has not seen, described by the items they liked."""

        # Defined here because k's upper bound is the served model's.
        model_config = ConfigDict(extra="forbid")
        items: list[str] = Field(min_length=1, description="Raw ids of the items the user liked (at least one).")
        k: int = Field(10, ge=1, le=max_k, description=f"How many items to return (1..{max_k}).")

    @app.post("/recommendations", summary="Top-k items for a new user, from the items they liked", **ranked)
    async def recommend_for_items(request: Annotated[NewUserRequest, Body()]) -> Response:
        """Folds in a user the model has not seen from the items they liked; those items are excluded."""
        return _answer(lambda: service.for_items(request.items, request.k))

    @app.get("/items/{item_id:path}/similar", summary="The items most similar to one item", **ranked)
    async def similar_items(
        item_id: Annotated[str, Path(description="The item's raw id from the training data.")], k: K = 10
    ) -> Response:
        """The items whose vectors score highest against this item's vector; the item itself is excluded."""
        return _answer(lambda: service.similar_items(item_id, k))

    @app.get("/model", response_model=ModelInfo, summary="What is served")
    async def model_info() -> dict:
        """The model, its dataset, sizes, test metrics, the index kind and the largest k."""
        return {**metadata, "max_k": max_k}

    @app.exception_handler(Exception)
    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        # A bug, not a bad request: logged with its traceback (uvicorn logs it again), answered
        # as JSON so that clients can parse every response of this server the same way.
        logger.error("unexpected %s in %s %s", type(error).__name__, request.method, request.url.path)
        return JSONResponse({"detail": "internal server error; the server log has the details"}, status_code=500)

    return app


def app_from_environment() -> FastAPI:
    """Uvicorn factory used by ``sigerec serve --workers N``: each worker loads the model folder
    named by ``SIGEREC_MODEL_DIR`` (and the index kind ``SIGEREC_INDEX``, default auto)."""
    from sigerec.errors import SigerecError
    from sigerec.serving.model_folder import ModelFolder
    from sigerec.serving.service import RecommendationService

    model_dir = os.environ.get(MODEL_DIR_VARIABLE)
    if not model_dir:
        raise SigerecError(f"set {MODEL_DIR_VARIABLE} to a model folder, or start the server with `sigerec serve`.")
    return create_app(RecommendationService(ModelFolder.load(model_dir), os.environ.get(INDEX_VARIABLE, "auto")))
