"""Writing result records: JSON lines, CSV or a table; resuming an output file."""

from __future__ import annotations

import csv
import io
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from ..model.printable import printable
from ..model.results import CSV_FIELDS, MediaResult, Provenance


def already_scored(path: Path, fmt: str) -> set[str]:
    """Make an earlier run's output ready to resume, and return the paths it scored (ok or no_face).

    Its error records are removed, so a rerun tries those files again (a
    fault may have passed; if not, they fail again and the exit code says
    so), and so is a line a killed run cut off.
    """
    if not path.exists():
        return set()
    if fmt == "csv":
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            rows = [row for row in reader if row.get("path")]
            fields = reader.fieldnames or CSV_FIELDS
        kept = [row for row in rows if row.get("status") != "error"]
        if len(kept) < len(rows):
            _rewrite(path, lambda out: _write_csv(out, fields, kept))
        return {row["path"] for row in kept}
    lines, records = path.read_bytes().split(b"\n"), []
    for line in lines:
        try:
            records.append((line, json.loads(line)))
        except json.JSONDecodeError:
            continue  # the line a killed run was writing
    kept = [(line, r) for line, r in records if isinstance(r, dict) and "path" in r and r.get("status") != "error"]
    if len(kept) < len([line for line in lines if line]):
        _rewrite(path, lambda out: out.write(b"".join(line + b"\n" for line, _ in kept)))
    return {r["path"] for _, r in kept}


def _csv_header(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        return next(csv.reader(fh), None) or CSV_FIELDS


def _write_csv(out: IO[bytes], fields, rows: list[dict]) -> None:
    text = io.TextIOWrapper(out, newline="")  # the encoding RecordWriter appends with
    writer = csv.DictWriter(text, fields)
    writer.writeheader()
    writer.writerows(rows)
    text.flush()
    text.detach()


def _rewrite(path: Path, write) -> None:
    """Replace ``path`` with what ``write`` writes, atomically (a kill leaves the old file or the new, never half)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as out:
        write(out)
    tmp.replace(path)


class RecordWriter:
    """Writes records to a file (or stdout), flushing each so a kill loses at most one."""

    def __init__(self, out: Path | None, fmt: str, append: bool = False) -> None:
        self.out, self.fmt, self.append = out, fmt, append
        self._fh: IO[str] = sys.stdout
        self._csv: csv.DictWriter | None = None

    def __enter__(self) -> "RecordWriter":
        if self.out is not None:
            self._fh = self.out.open("a" if self.append else "w", newline="")
        if self.fmt == "csv":
            # A resumed file keeps its own columns (one written before a column was added stays aligned).
            fields = _csv_header(self.out) if self.append and self.out is not None else CSV_FIELDS
            self._csv = csv.DictWriter(self._fh, fields, extrasaction="ignore")
            if not self.append:
                self._csv.writeheader()
        elif self.fmt == "table":
            print(f"{'status':8} {'label':9} {'score':>6} {'persons':>7} {'faces':>5} {'ms':>7}  {'provenance':17}  path",
                  file=self._fh)
        return self

    def write(self, result: MediaResult) -> None:
        if self.fmt == "jsonl":
            self._fh.write(json.dumps(result.to_dict()) + "\n")
        elif self._csv is not None:
            self._csv.writerow(result.to_row())
        else:
            row = result.to_row()
            note = f"  ({row['error_detail']})" if row["error_detail"] else ""
            persons = sum(t.counted for t in result.tracks)  # people followed through the file (counted tracks)
            # "uncertain" when the score lies in the record's uncertain band (the score says which way it leans)
            line = (f"{row['status']:8} {result.verdict or '-':9} {row['score'] or '-':>6} {persons:>7} {row['faces']:>5} "
                    f"{row['total_ms']:>7}  {provenance_text(result.provenance):17}  {row['path']}{note}")
            print(printable(line), file=self._fh)
        self._fh.flush()

    def __exit__(self, *exc) -> None:
        if self.out is not None:
            self._fh.close()


def provenance_text(provenance: Provenance | None) -> str:
    """The table's short provenance cell: "-" without Content Credentials, else their state or the AI they declare.

    A declaration is shown only when the manifest checks out: an invalid one
    proves nothing about what it says.
    """
    if provenance is None or not provenance.present:
        return "-"
    if provenance.validation_state in ("valid", "trusted") and provenance.ai_content:
        return f"c2pa AI-{provenance.ai_content}"
    return f"c2pa {provenance.validation_state}"


@contextmanager
def progress_bar(total: int, show: bool) -> Iterator:
    from tqdm import tqdm

    with tqdm(total=total, disable=not show, unit="file", file=sys.stderr, dynamic_ncols=True) as bar:
        yield bar
