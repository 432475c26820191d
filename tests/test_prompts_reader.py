"""The streaming prompts reader on hand-written CSV/Parquet files with known contents."""

from __future__ import annotations

import csv

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from v2p.data.bad_records import BadRecords
from v2p.data.prompts import read_prompts, read_prompts_table
from v2p.errors import BadInputError

HEADER = ["uuid", "prompt", "time", "toxicity", "obscene", "identity_attack", "insult", "threat", "sexual_explicit"]
TRICKY = [
    'a cat, "quoted", dancing -ar 16:9 -motion 4 -gs 24 -neg "blurry"',
    "line one\nline two, with comma",
    "emoji 🌊🔥 and accents: café naïve",
    "A CAT, \"QUOTED\", DANCING -ar 16:9 -motion 4 -gs 24 -neg \"blurry\"",  # same prompt, other case
]


def write_csv(path, rows, header=HEADER):
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in rows:
            w.writerow(r)
    return path


def vidprom_row(uuid, prompt):
    return [uuid, prompt, "2023-08-01 10:00:00", "0.001", "0.0", "0.0", "0.0", "0.0", "0.0"]


def test_csv_roundtrip_keeps_tricky_prompts_and_carries_columns(tmp_path):
    path = write_csv(tmp_path / "p.csv", [vidprom_row(f"u{i}", p) for i, p in enumerate(TRICKY)])
    reader = read_prompts(path, dedup=False)
    table = pa.Table.from_batches(list(reader))
    assert table.column("prompt").to_pylist() == TRICKY
    assert table.column("uuid").to_pylist() == ["u0", "u1", "u2", "u3"]
    assert table.column("row").to_pylist() == [1, 2, 3, 4]
    assert table.column("toxicity").to_pylist() == ["0.001"] * 4  # carried verbatim
    assert set(HEADER) <= set(table.column_names)
    ids = table.column("prompt_id").to_pylist()
    assert ids[0] == ids[3] and len(set(ids)) == 3
    assert reader.stats.as_dict() == {"rows": 4, "valid": 4, "unique": 3, "repeated": 1}


def test_dedup_keeps_first_occurrence(tmp_path):
    path = write_csv(tmp_path / "p.csv", [vidprom_row(f"u{i}", p) for i, p in enumerate(TRICKY)])
    table = read_prompts_table(path)
    assert table.num_rows == 3
    assert table.column("uuid").to_pylist() == ["u0", "u1", "u2"]


def test_strip_flags_merges_flag_variants(tmp_path):
    rows = [vidprom_row("a", "a dog running -ar 16:9"), vidprom_row("b", "a dog running -gs 12 -seed 3"),
            vidprom_row("c", "a dog running")]
    path = write_csv(tmp_path / "p.csv", rows)
    assert read_prompts_table(path).num_rows == 3
    assert read_prompts_table(path, strip_flags=True).num_rows == 1


def test_parquet_input_matches_csv(tmp_path):
    csv_path = write_csv(tmp_path / "p.csv", [vidprom_row(f"u{i}", p) for i, p in enumerate(TRICKY)])
    pq.write_table(pa.table({"uuid": [f"u{i}" for i in range(4)], "prompt": TRICKY, "score": [1.0, 2.0, 3.0, 4.0]}),
                   tmp_path / "p.parquet")
    from_csv = read_prompts_table(csv_path)
    from_pq = read_prompts_table(tmp_path / "p.parquet")
    assert from_pq.column("prompt_id").to_pylist() == from_csv.column("prompt_id").to_pylist()
    assert from_pq.column("score").to_pylist() == [1.0, 2.0, 3.0]  # typed columns keep their type


def test_small_batches_give_the_same_result(tmp_path):
    rows = [vidprom_row(f"u{i}", f"prompt number {i % 37}") for i in range(500)]
    path = write_csv(tmp_path / "p.csv", rows)
    big = read_prompts_table(path)
    small = read_prompts_table(path, batch_rows=7)
    assert big.num_rows == small.num_rows == 37
    parquet = tmp_path / "p.parquet"
    pq.write_table(pa.table({"uuid": [r[0] for r in rows], "prompt": [r[1] for r in rows]}), parquet)
    reader = read_prompts(parquet, batch_rows=7)
    assert max(b.num_rows for b in reader) <= 7
    assert reader.stats.unique == 37


def test_header_matching_is_case_insensitive_and_bom_tolerant(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes("\ufeffUUID,Prompt\nx,hello world\n".encode())
    assert read_prompts_table(path).column("prompt").to_pylist() == ["hello world"]


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (["uuid", "text"], [["a", "b"]], "missing required column 'prompt'"),
        (["id", "prompt"], [["a", "b"]], "missing required column 'uuid'"),
    ],
)
def test_missing_column_is_a_clear_error(tmp_path, header, rows, message):
    path = write_csv(tmp_path / "p.csv", rows, header=header)
    with pytest.raises(BadInputError, match=message) as info:
        read_prompts(path)
    assert str(path) in str(info.value)


def test_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("")
    with pytest.raises(BadInputError, match="empty"):
        read_prompts(path)


def bad_rows_csv(tmp_path):
    """Rows: 1 ok, 2 empty prompt, 3 whitespace prompt, 4 conflicting uuid, 5 ok, 6 empty uuid."""
    rows = [vidprom_row("u1", "fine prompt"), vidprom_row("u2", ""), vidprom_row("u3", "   \n "),
            vidprom_row("u1", "another prompt for u1"), vidprom_row("u5", "also fine"), vidprom_row("", "no id")]
    return write_csv(tmp_path / "p.csv", rows)


def test_bad_rows_raise_naming_file_and_row(tmp_path):
    path = bad_rows_csv(tmp_path)
    with pytest.raises(BadInputError) as info:
        list(read_prompts(path))
    assert str(info.value) == f"{path}, row 2 (uuid u2): empty prompt"


def test_skip_bad_counts_every_reason_and_keeps_good_rows(tmp_path):
    path = bad_rows_csv(tmp_path)
    bad = BadRecords(skip_bad=True)
    table = read_prompts_table(path, bad=bad)
    assert table.column("uuid").to_pylist() == ["u1", "u5"]
    assert dict(bad.counts) == {"empty_prompt": 2, "conflicting_uuid": 1, "empty_uuid": 1}
    conflict = [e for e in bad.examples if e.reason == "conflicting_uuid"][0]
    assert conflict.location == "row 4 (uuid u1)" and "row 1" in conflict.detail


def test_duplicate_uuid_with_same_prompt_is_not_an_error(tmp_path):
    path = write_csv(tmp_path / "p.csv", [vidprom_row("u1", "same"), vidprom_row("u1", "same")])
    reader = read_prompts(path)
    assert sum(b.num_rows for b in reader) == 1
    assert reader.stats.repeated == 1


def test_undecodable_bytes_are_reported_per_row(tmp_path):
    path = tmp_path / "p.csv"
    path.write_bytes(b"uuid,prompt\nu1,good prompt\nu2,bad \xff\xfe bytes\nu3,also good\n")
    with pytest.raises(BadInputError, match=r"row 2 \(uuid u2\): prompt is not valid UTF-8 \(byte 0xff"):
        list(read_prompts(path))
    bad = BadRecords(skip_bad=True)
    table = read_prompts_table(path, bad=bad)
    assert table.column("uuid").to_pylist() == ["u1", "u3"]
    assert bad.counts["invalid_utf8"] == 1


def test_malformed_csv_row_is_reported(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("uuid,prompt,time\nu1,ok,t\nu2,too,many,fields,here\nu3,fine,t\n")
    with pytest.raises(BadInputError, match="malformed CSV row: expected 3 columns, got 5"):
        list(read_prompts(path))
    bad = BadRecords(skip_bad=True)
    table = read_prompts_table(path, bad=bad)
    assert table.column("uuid").to_pylist() == ["u1", "u3"]
    assert bad.counts["malformed_row"] == 1


def test_parquet_null_prompt_is_bad_row(tmp_path):
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"uuid": ["a", "b"], "prompt": ["x", None]}), path)
    with pytest.raises(BadInputError, match=r"row 2 \(uuid b\): NULL prompt"):
        list(read_prompts(path))


def test_not_a_prompts_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hi")
    with pytest.raises(BadInputError, match="not a prompts file"):
        read_prompts(path)
