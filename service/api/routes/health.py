"""Liveness and readiness."""

from fastapi import APIRouter

from ..deps import PredictorDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(predictor: PredictorDep) -> dict:
    """The model is loaded and the service can score (503 while loading)."""
    ref = predictor.model_ref
    return {"status": "ready", "model": {"name": ref.name, "version": ref.version, "architecture": ref.architecture}}
