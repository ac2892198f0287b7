"""Every kind of problem the API answers with, and what a client should do about it.

A problem's ``type`` is ``problem_base_uri`` + its slug (default relative:
``/problems/limit_exceeded``), and the server serves that URI as a small
HTML page made from this table (``service/api/routes/problems.py``). Slugs
are lower case with underscores, as the record's ``error.type``; a test
checks that every kind the code can raise is here.
"""

from __future__ import annotations

# slug -> (title, what it means and what to do)
PROBLEM_TYPES: dict[str, tuple[str, str]] = {
    "bad_request": ("Bad request", "The body could not be read as sent: malformed multipart (no closing boundary, no "
                    "boundary in the Content-Type) or JSON. Let the HTTP library write the body and its headers."),
    "unauthorized": ("Unauthorized", "The server requires an API key: send it as `Authorization: Bearer KEY` or "
                     "`X-API-Key: KEY`."),
    "paths_disabled": ("Server-side paths disabled", "This server takes uploads only: it names no allowed root for "
                       "server-side paths (`UNMASK_ALLOWED_ROOT`)."),
    "path_outside_root": ("Path outside the allowed root", "A server-side path (or a link inside a folder) leads outside "
                          "the folder the server allows. Send paths under that root."),
    "not_found": ("Not found", "No such route, job, batch or server-side file. A deleted job is gone for good."),
    "method_not_allowed": ("Method not allowed", "The route exists but not with this method; the `Allow` header lists "
                           "the ones it takes."),
    "request_timeout": ("Request timeout", "The body stopped arriving for longer than the server waits "
                        "(`UNMASK_BODY_IDLE_S`). Retry on a steadier connection."),
    "job_ended": ("Job ended", "The job has already ended (done, failed or cancelled): there is nothing to cancel."),
    "limit_exceeded": ("Limit exceeded", "A file, a request or a batch is over one of the server's limits (bytes, "
                       "pixels, duration, files). The detail names the limit; larger files go to `POST /v1/jobs`."),
    "unsupported_media": ("Unsupported media type", "Not an image or video the server decodes (sniffed from the bytes, "
                          "not the name), or an image sent to the video route and the other way round."),
    "corrupt_media": ("Unprocessable media", "The file is of a supported type but does not decode: empty, truncated "
                      "or damaged. Send the whole file."),
    "media_error": ("Unprocessable media", "The file could not be scored; the detail says why."),
    "invalid_request": ("Invalid request", "A field is missing, malformed, out of range, sent empty or sent twice; "
                        "the detail names it. The OpenAPI document at /openapi.json types every field."),
    "callback_not_allowed": ("Callback not allowed", "The `callback_url` is malformed or its host is not in the "
                             "server's allow-list (`UNMASK_CALLBACK_HOSTS`)."),
    "queue_full": ("Too many requests", "The job queue is at its limit (`UNMASK_MAX_QUEUE`). Retry after the time in "
                   "`Retry-After`."),
    "internal": ("Internal error", "Something unexpected failed on the server; it is logged with the request's id "
                 "(`X-Request-ID`). Report that id."),
    "not_ready": ("Not ready", "The model is still loading; retry after the time in `Retry-After`."),
    "model_failed": ("Model failed to load", "The server could not load its model; an operator must fix it (the "
                     "server log says why). Retrying will not help."),
    "busy": ("Busy", "The server is scoring as many synchronous requests as it allows. Retry, or send the file to "
             "`POST /v1/jobs`."),
    "insufficient_storage": ("Insufficient storage", "The server has no disk space left for the upload; retry later."),
}


def slug(kind: str) -> str:
    """A kind as its type URI ends: lower case, underscores."""
    return kind.lower().replace("-", "_").replace(" ", "_")
