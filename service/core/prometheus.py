"""Prometheus metrics: requests, latency, queue depth, faces scored, model version."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from ...model.results import MediaResult, ModelRef

REGISTRY = CollectorRegistry()
REQUESTS = Counter("unmask_requests_total", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram(
    "unmask_request_seconds", "HTTP request latency", ["route"], registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
FILES = Counter("unmask_files_scored_total", "Files scored, by status", ["media", "status"], registry=REGISTRY)
FACES = Counter("unmask_faces_scored_total", "Faces classified", registry=REGISTRY)
QUEUE = Gauge("unmask_jobs", "Jobs by state", ["state"], registry=REGISTRY)
MODEL = Info("unmask_model", "The loaded model", registry=REGISTRY)


def record_model(ref: ModelRef) -> None:
    MODEL.info({"name": ref.name, "version": ref.version, "architecture": ref.architecture})


def record_result(result: MediaResult) -> None:
    FILES.labels(result.media, result.status).inc()
    FACES.inc(result.face_count)
