"""Stream prompts from a VidProM-style CSV or Parquet file as Arrow record batches.

The real ``VidProM_unique.csv`` is 383 MB with 1.67M rows whose prompts hold quoted
newlines, commas, quotes and emoji. It is never loaded whole: Arrow's streaming CSV reader
yields blocks, each block is validated and normalised, and only the per-prompt keys needed
for dedup (uuid -> prompt id, seen prompt ids) stay in memory.

Output batches have the columns ``row`` (1-based data row in the source file), ``uuid``,
``prompt`` (as written, white space trimmed), ``prompt_id`` (stable id of the normalised
form, see :mod:`v2p.data.normalize`), ``first_occurrence`` (False for a row whose prompt was
seen earlier; only with ``dedup=False``) and every other source column, carried along. CSV
columns other than uuid and prompt are carried as text, exactly as written.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from v2p.data.bad_records import BadRecords
from v2p.data.normalize import normalize_prompt, prompt_id
from v2p.errors import BadInputError

REQUIRED_COLUMNS = ("uuid", "prompt")
PROMPT_FILE_SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq")
DEFAULT_BATCH_ROWS = 65_536


@dataclass
class ReadStats:
    """Counts filled in while a :class:`PromptReader` is iterated."""

    rows: int = 0
    valid: int = 0
    unique: int = 0
    repeated: int = 0  # valid rows whose normalised prompt was already seen

    def as_dict(self) -> dict:
        return {"rows": self.rows, "valid": self.valid, "unique": self.unique, "repeated": self.repeated}


def is_prompts_file(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in PROMPT_FILE_SUFFIXES)


def _csv_header(path: Path) -> list[str]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", errors="replace", newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, EOFError, csv.Error) as exc:
        raise BadInputError(str(path), f"cannot read CSV header ({exc})") from None
    if not header:
        raise BadInputError(str(path), "file is empty (no header row)")
    return header


def _unique_names(names: list[str]) -> list[str]:
    """Header names made unique: a repeated carried column keeps its data as ``name_2``, ``name_3``."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def _resolve_columns(path: Path, names: list[str]) -> dict[str, str]:
    """Map each required column to the file's own spelling (matched case-insensitively)."""
    lookup = {n.strip().lower(): n for n in names}
    resolved = {}
    for col in REQUIRED_COLUMNS:
        twins = [n for n in names if n.strip().lower() == col]
        if len(twins) > 1:
            raise BadInputError(str(path), f"column '{col}' appears twice in the header ({', '.join(map(repr, twins))}); "
                                "keep one")
        if col not in lookup:
            shown = ", ".join(repr(n) for n in names[:12]) + (" ..." if len(names) > 12 else "")
            raise BadInputError(str(path), f"missing required column '{col}'; the file has: {shown}")
        resolved[col] = lookup[col]
    return resolved


@dataclass
class PromptReader:
    """Iterate validated prompt batches; ``stats`` and ``bad`` are filled as it goes.

    ``dedup=True`` yields each normalised prompt once (its first row). A uuid seen again
    with a *different* prompt is a bad record: VidProM ids name one prompt each.
    """

    path: Path
    strip_flags: bool = False
    dedup: bool = True
    bad: BadRecords = field(default_factory=BadRecords)
    batch_rows: int = DEFAULT_BATCH_ROWS
    stats: ReadStats = field(default_factory=ReadStats)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_file():
            raise BadInputError(str(self.path), "no such prompts file")
        if not is_prompts_file(self.path):
            raise BadInputError(
                str(self.path), f"not a prompts file; expected one of {', '.join(PROMPT_FILE_SUFFIXES)}"
            )
        self._is_parquet = self.path.name.lower().endswith((".parquet", ".pq"))
        names = self._source_columns()
        self._columns = _resolve_columns(self.path, names)
        names = _unique_names(names)
        self.carried_columns = [n for n in names if n not in self._columns.values()]

    # -- source access -------------------------------------------------------------------
    def _source_columns(self) -> list[str]:
        if self._is_parquet:
            try:
                names = list(pq.ParquetFile(self.path).schema_arrow.names)
            except (pa.ArrowException, OSError) as exc:
                raise BadInputError(str(self.path), f"not a readable Parquet file ({exc})") from None
            twins = sorted({n for n in names if names.count(n) > 1})
            if twins:
                raise BadInputError(str(self.path), f"column(s) {', '.join(map(repr, twins))} appear twice; keep one")
            return names
        return _csv_header(self.path)

    def _raw_batches(self) -> Iterator[pa.RecordBatch]:
        if self._is_parquet:
            try:
                yield from pq.ParquetFile(self.path).iter_batches(batch_size=self.batch_rows)
            except (pa.ArrowException, OSError) as exc:
                raise BadInputError(str(self.path), f"Parquet read failed ({exc})") from None
            return
        yield from self._csv_batches()

    def _csv_batches(self) -> Iterator[pa.RecordBatch]:
        names = _unique_names(_csv_header(self.path))
        # every column as raw bytes: undecodable text is caught per row (uuid, prompt) or shown
        # as U+FFFD (carried columns), never fails a whole block; no type guessing between blocks.
        types = {n: pa.binary() for n in names}
        last_invalid: list = []

        def on_invalid(row) -> str:
            snippet = (row.text or "").replace("\n", " ")[:60]
            detail = f"expected {row.expected_columns} columns, got {row.actual_columns}: {snippet!r}"
            location = f"line {row.number}" if row.number and row.number > 0 else f"after row {self.stats.rows}"
            if not self.bad.skip_bad:
                last_invalid.append((location, detail))
                return "error"
            self.stats.rows += 1
            self.bad.add(str(self.path), location, "malformed_row", f"malformed CSV row: {detail}")
            return "skip"

        try:
            reader = pacsv.open_csv(
                self.path,
                read_options=pacsv.ReadOptions(block_size=4 << 20, column_names=names, skip_rows=1),
                parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
                convert_options=pacsv.ConvertOptions(
                    column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
                ),
            )
            for batch in reader:
                yield batch
        except pa.ArrowInvalid as exc:
            if last_invalid:
                location, detail = last_invalid[-1]
                raise BadInputError(str(self.path), f"malformed CSV row: {detail}", location=location) from None
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "straddling" in reason:
                reason = "a field larger than 4 MiB (no prompt is that long: is this the right file?)"
            raise BadInputError(str(self.path), f"CSV read failed after row {self.stats.rows} ({reason})") from None

    # -- validation ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[pa.RecordBatch]:
        seen_uuid: dict[str, tuple[int, int]] = {}  # uuid -> (prompt key, first row)
        seen_prompt: set[int] = set()
        uuid_col, prompt_col = self._columns["uuid"], self._columns["prompt"]
        source = str(self.path)
        for raw in self._raw_batches():
            if raw.num_rows == 0:
                continue
            uuids = raw.column(uuid_col).to_pylist()
            prompts = raw.column(prompt_col).to_pylist()
            keep_idx, rows, out_uuid, out_prompt, out_pid, out_first = [], [], [], [], [], []
            for i, (u, p) in enumerate(zip(uuids, prompts, strict=True)):
                self.stats.rows += 1
                row = self.stats.rows
                loc = f"row {row}"
                u = _as_text(u)
                if not u or not u.strip():
                    self.bad.add(source, loc, "empty_uuid", "empty or NULL uuid")
                    continue
                u = u.strip()
                loc = f"row {row} (uuid {u})"
                if p is None:
                    self.bad.add(source, loc, "empty_prompt", "NULL prompt")
                    continue
                try:
                    text = p.decode("utf-8") if isinstance(p, bytes) else str(p)
                except UnicodeDecodeError as exc:
                    self.bad.add(
                        source, loc, "invalid_utf8",
                        f"prompt is not valid UTF-8 (byte 0x{p[exc.start]:02x} at offset {exc.start})",
                    )
                    continue
                text = text.strip()
                if not text:
                    self.bad.add(source, loc, "empty_prompt", "empty prompt")
                    continue
                norm = normalize_prompt(text, strip_flags=self.strip_flags)
                if not norm:
                    self.bad.add(source, loc, "empty_prompt", "prompt is empty once generator flags are removed")
                    continue
                pid = prompt_id(norm)
                key = int(pid, 16)
                first = seen_uuid.get(u)
                if first is not None and first[0] != key:
                    self.bad.add(
                        source, loc, "conflicting_uuid",
                        f"uuid already used at row {first[1]} with a different prompt",
                    )
                    continue
                if first is None:
                    seen_uuid[u] = (key, row)
                self.stats.valid += 1
                first_time = key not in seen_prompt
                if first_time:
                    seen_prompt.add(key)
                    self.stats.unique += 1
                else:
                    self.stats.repeated += 1
                    if self.dedup:
                        continue
                out_first.append(first_time)
                keep_idx.append(i)
                rows.append(row)
                out_uuid.append(u)
                out_prompt.append(text)
                out_pid.append(pid)
            if not keep_idx:
                continue
            yield self._assemble(raw, keep_idx, rows, out_uuid, out_prompt, out_pid, out_first)

    def _assemble(self, raw, keep_idx, rows, uuids, prompts, pids, first) -> pa.RecordBatch:
        carried = raw.select(self.carried_columns).take(pa.array(keep_idx, pa.int64())) if self.carried_columns else None
        arrays = [pa.array(rows, pa.int64()), pa.array(uuids, pa.string()), pa.array(prompts, pa.string()),
                  pa.array(pids, pa.string()), pa.array(first, pa.bool_())]
        names = ["row", "uuid", "prompt", "prompt_id", "first_occurrence"]
        if carried is not None:
            for name in self.carried_columns:
                arrays.append(_as_text_array(carried.column(name)))
                # a source column called "row" or "prompt_id" keeps its data under another name
                names.append(f"source_{name}" if name in names else name)
        return pa.RecordBatch.from_arrays(arrays, names=names)


def _as_text_array(values: pa.Array) -> pa.Array:
    """A carried CSV column (raw bytes) as text: exact when it is UTF-8, else U+FFFD where it is not."""
    if not pa.types.is_binary(values.type):
        return values
    try:
        return values.cast(pa.string())  # validates UTF-8
    except pa.ArrowInvalid:
        return pa.array([None if v is None else v.decode("utf-8", errors="replace") for v in values.to_pylist()],
                        pa.string())


def _as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def read_prompts(path: str | Path, *, strip_flags: bool = False, dedup: bool = True,
                 skip_bad: bool = False, bad: BadRecords | None = None,
                 batch_rows: int = DEFAULT_BATCH_ROWS) -> PromptReader:
    """Open a prompts file for streaming. Iterate the result for Arrow record batches."""
    return PromptReader(Path(path), strip_flags=strip_flags, dedup=dedup,
                        bad=bad if bad is not None else BadRecords(skip_bad=skip_bad), batch_rows=batch_rows)


def read_prompts_table(path: str | Path, **kwargs) -> pa.Table:
    """All validated prompts as one table: for small files and tests, not the 1.67M-row CSV."""
    reader = read_prompts(path, **kwargs)
    batches = list(reader)
    if not batches:
        return pa.table({"row": pa.array([], pa.int64()), "uuid": pa.array([], pa.string()),
                         "prompt": pa.array([], pa.string()), "prompt_id": pa.array([], pa.string()),
                         "first_occurrence": pa.array([], pa.bool_())})
    return pa.Table.from_batches(batches)


def write_prompts_csv(rows: list[dict], path: str | Path, columns: list[str]) -> None:
    """Write rows in the VidProM CSV layout (RFC 4180 quoting, so newlines survive).

    Python's minimal quoting leaves a bare carriage return unquoted when lines end in ``\\n``,
    and every CSV reader then splits the row there: such rows are written fully quoted."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        quoted = csv.DictWriter(fh, fieldnames=columns, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writeheader()
        for r in rows:
            has_cr = any(isinstance(v, str) and "\r" in v for v in r.values())
            (quoted if has_cr else writer).writerow(r)


__all__ = ["PromptReader", "ReadStats", "read_prompts", "read_prompts_table", "write_prompts_csv",
           "is_prompts_file", "REQUIRED_COLUMNS"]
