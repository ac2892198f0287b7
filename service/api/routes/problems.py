"""The problem types as pages: a problem's ``type`` URI, opened in a browser, says what it means and what to do."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from ...core.problem_types import PROBLEM_TYPES
from ...core.problems import Problem

router = APIRouter(prefix="/problems", include_in_schema=False)  # documentation, not API: no key, not in the schema

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} - unmask</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}}code{{background:#eee;padding:0 .2em}}</style>
</head><body>{body}<p><a href="/problems">All problem types</a> · <a href="/docs">API reference</a></p></body></html>"""


def _markup(text: str) -> str:
    """Escaped text with `code` spans."""
    parts = escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


@router.get("", response_class=HTMLResponse)
def list_problem_types() -> str:
    rows = "".join(f'<li><a href="/problems/{slug}"><code>{slug}</code></a>: {escape(title)}</li>'
                   for slug, (title, _) in sorted(PROBLEM_TYPES.items()))
    return PAGE.format(title="Problem types", body=f"<h1>Problem types</h1><p>Every error answer is "
                       f"<code>application/problem+json</code> whose <code>type</code> names one of these.</p><ul>{rows}</ul>")


@router.get("/{slug}", response_class=HTMLResponse)
def show_problem_type(slug: str) -> str:
    if slug not in PROBLEM_TYPES:
        raise Problem(404, "Not found", f"no problem type {slug!r}; /problems lists them", "not_found")
    title, text = PROBLEM_TYPES[slug]
    return PAGE.format(title=escape(title), body=f"<h1>{escape(title)}</h1><p><code>{slug}</code></p><p>{_markup(text)}</p>")
