"""Liveness, readiness and Prometheus metrics (no API key needed)."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...core import prometheus
from ..deps import PredictorDep
from ..examples import problems

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses=problems(503))
def readyz(predictor: PredictorDep) -> dict:
    """The model is loaded and the service can score (503 while loading)."""
    ref = predictor.model_ref
    return {"status": "ready", "model": {"name": ref.name, "version": ref.version, "architecture": ref.architecture}}


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}})
def metrics(request: Request) -> Response:
    """Prometheus text format: requests, latency, jobs by state, files and faces scored, model."""
    store = getattr(request.app.state, "store", None)
    if store is not None:
        for state in ("queued", "running", "done", "failed", "cancelled"):
            prometheus.QUEUE.labels(state).set(store.count(state))
    return Response(generate_latest(prometheus.REGISTRY), media_type=CONTENT_TYPE_LATEST)
