"""`v2p serve`: the JSON API with real uploads (decoded clips, corrupt and oversize files), ratings in a
real DuckDB file, their export, and a rating that survives kill -9 of a real server process."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from v2p.cli import app as cli_app
from v2p.data.bad_records import BadRecords
from v2p.data.shard import open_shard
from v2p.web.app import ServeConfig, create_app, sniff_suffix

from conftest import running_server


@pytest.fixture(scope="module")
def clip_bytes(small_shard) -> bytes:
    ref, data = next(iter(open_shard(small_shard).video_payloads(BadRecords())))
    return data


@pytest.fixture(scope="module")
def served(tiny_clip_index, tmp_path_factory):
    feedback = tmp_path_factory.mktemp("fb") / "ratings.duckdb"
    cfg = ServeConfig(index=tiny_clip_index, feedback=feedback, max_upload_mb=1.0)
    with TestClient(create_app(cfg)) as client:
        yield client, feedback


def _uploads() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("v2p-upload-*")}


def test_health_and_page(served):
    client, _ = served
    h = client.get("/api/health").json()
    assert h["status"] == "ok" and h["prompts"] == 12 and h["encoder"] == "clip:v2p-clip-tiny/random"
    page = client.get("/")
    assert page.status_code == 200 and "Drop a clip here" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert "/api/query" in client.get("/openapi.json").json()["paths"]


def test_upload_a_real_clip(served, clip_bytes):
    client, _ = served
    before = _uploads()
    r = client.post("/api/query", files={"file": ("clip.mp4", clip_bytes, "video/mp4")}, data={"top": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["result"]["candidates"]) == 3 and body["result"]["query"] == "clip.mp4"
    assert len(body["frames"]) == 8 and body["frames"][0].startswith("data:image/jpeg;base64,")
    assert len(body["clip_sha256"]) == 64 and body["query_id"]
    assert _uploads() == before  # the temporary file is gone


@pytest.mark.parametrize(("name", "data", "status", "message"), [
    ("notes.mp4", b"these are notes, not a video " * 20, 422, "notes.mp4: cannot decode video"),
    ("broken.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200, 422, "broken.mp4: cannot decode video"),
    ("empty.webm", b"", 422, "empty.webm: empty file"),
    ("huge.mp4", b"\x00" * (1024 * 1024 + 10), 413, "larger than the 1 MB limit"),
])
def test_bad_uploads_get_clear_json_errors(served, name, data, status, message):
    client, _ = served
    before = _uploads()
    r = client.post("/api/query", files={"file": (name, data, "video/mp4")})
    assert r.status_code == status and message in r.json()["error"], r.text
    assert _uploads() == before


def test_text_query_and_argument_errors(served):
    client, _ = served
    r = client.post("/api/query", data={"text": "a red ball", "top": "2"})
    assert r.status_code == 200 and len(r.json()["result"]["candidates"]) == 2
    assert r.json()["result"]["score_kind"] == "cosine"
    assert client.post("/api/query", data={}).status_code == 422
    assert client.post("/api/query", data={"text": "x", "top": "0"}).status_code == 422


def test_ratings_land_in_duckdb_and_export(served, clip_bytes, tmp_path):
    client, feedback = served
    body = client.post("/api/query", files={"file": ("clip.mp4", clip_bytes, "video/mp4")}).json()
    top = body["result"]["candidates"][0]
    r = client.post("/api/feedback", json={"query_id": body["query_id"], "rating": 1, "prompt_id": top["prompt_id"],
                                           "prompt": top["prompt"], "rank": 1, "clip_sha256": body["clip_sha256"],
                                           "shown": [{"prompt_id": top["prompt_id"], "rank": 1}]})
    assert r.status_code == 200 and r.json() == {"stored": True}
    assert client.post("/api/feedback", json={"query_id": "q", "rating": 5}).status_code == 422
    with duckdb.connect(str(feedback), read_only=True) as con:
        row = con.execute("SELECT query_id, prompt_id, rating, clip_sha256 FROM ratings WHERE query_id = ?",
                          [body["query_id"]]).fetchone()
    assert row == (body["query_id"], top["prompt_id"], 1, body["clip_sha256"])
    runner = CliRunner()
    for suffix in ("parquet", "csv"):
        res = runner.invoke(cli_app, ["feedback", "export", str(feedback), "--out", str(tmp_path / f"r.{suffix}"),
                                      "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["rows"] >= 1 and (tmp_path / f"r.{suffix}").stat().st_size > 0
    bad = runner.invoke(cli_app, ["feedback", "export", str(feedback), "--out", str(tmp_path / "r.xlsx")])
    assert bad.exit_code == 2 and "parquet, csv" in bad.output


def test_content_is_sniffed_not_trusted_from_the_name():
    assert sniff_suffix(b"GIF89a....") == ".gif"
    assert sniff_suffix(b"\x89PNG\r\n\x1a\n....") == ".png"
    assert sniff_suffix(b"\x00\x00\x00\x18ftypmp42") == ".video"


def test_a_rating_survives_kill_9_of_the_server(tiny_clip_index, tmp_path):
    import httpx

    feedback = tmp_path / "ratings.duckdb"
    with running_server(tiny_clip_index, feedback) as (url, proc):
        r = httpx.post(url + "/api/feedback", json={"query_id": "survivor", "rating": -1,
                                                    "wanted_prompt": "a blue cube"}, timeout=10)
        assert r.status_code == 200
    assert proc.returncode == -9  # killed, not shut down
    with duckdb.connect(str(feedback), read_only=True) as con:
        assert con.execute("SELECT wanted_prompt FROM ratings WHERE query_id = 'survivor'").fetchone() == ("a blue cube",)


def test_ratings_fit_weights_that_rank_the_rated_prompt_first(tiny_clip_index, tmp_path):
    """Preference pairs from ratings -> fitted fusion weights beside the index -> a Retriever that
    ranks with them; and `--no-feedback-weights` keeps the defaults."""
    import shutil

    from v2p.rerank.ratings import WEIGHTS_FILE, fit_weights, preference_pairs, read_rating_rows, serving_weights
    from v2p.retrieval.search import FusionWeights
    from v2p.web.feedback import FeedbackStore, Rating

    # users always prefer the candidate with the best *text* feature, whatever its video feature
    rng = np.random.default_rng(0)
    store = FeedbackStore(tmp_path / "r.duckdb")
    for q in range(120):
        feats = [{"text": float(t), "video": float(v), "camera": None} for t, v in rng.normal(size=(5, 2))]
        shown = [{"prompt_id": f"p{i}", "rank": i + 1, "features": f} for i, f in enumerate(feats)]
        best = int(np.argmax([f["text"] for f in feats]))
        store.add(Rating(f"q{q}", 1, f"p{best}", shown=shown))
    rows = read_rating_rows(tmp_path / "r.duckdb")
    diffs, n = preference_pairs(rows)
    assert n == 120 and diffs.shape == (480, 3)
    w = fit_weights(diffs, n, FusionWeights())
    assert w.text > w.video  # learnt: trust text here, against the default's 0.1 / 1.0

    index = tmp_path / "index"
    shutil.copytree(tiny_clip_index, index)
    res = CliRunner().invoke(cli_app, ["feedback", "fit", str(tmp_path / "r.duckdb"), "--index", str(index), "--json"])
    assert res.exit_code == 0, res.output
    assert (index / WEIGHTS_FILE).is_file() and json.loads(res.stdout)["rated_queries"] == 120
    assert serving_weights(index).text == pytest.approx(json.loads(res.stdout)["weights"]["text"])
    assert serving_weights(index, use_feedback=False) == FusionWeights()


def test_answers_carry_the_features_ratings_are_fitted_to(served, clip_bytes):
    client, _ = served
    body = client.post("/api/query", files={"file": ("clip.mp4", clip_bytes, "video/mp4")}).json()
    feats = body["result"]["candidates"][0]["features"]
    assert set(feats) == {"text", "video", "camera"} and feats["video"] is not None


def test_fifty_concurrent_uploads_on_loopback_all_succeed(tiny_clip_index, clip_bytes, tmp_path):
    """A bounded burst against a real server process: 50 concurrent uploads queue and all get answers."""
    import asyncio

    import httpx

    async def burst(url: str) -> list[int]:
        async with httpx.AsyncClient(timeout=120) as client:
            async def one():
                r = await client.post(url + "/api/query", files={"file": ("clip.mp4", clip_bytes, "video/mp4")})
                return r.status_code
            return await asyncio.gather(*(one() for _ in range(50)))

    with running_server(tiny_clip_index, tmp_path / "r.duckdb", "--max-pending", "64") as (url, _):
        statuses = asyncio.run(burst(url))
    assert statuses == [200] * 50


def test_splice_and_rerank_on_the_page_api(tiny_clip_index, clip_bytes, tmp_path):
    """--splice: the answer carries the composed prompt the page shows, from the same one decode."""
    cfg = ServeConfig(index=tiny_clip_index, feedback=tmp_path / "r.duckdb", splice=True)
    with TestClient(create_app(cfg)) as client:
        health = client.get("/api/health").json()
        assert health["splice"] and health["rerank"] and not health["cross_encoder"]
        r = client.post("/api/query", files={"file": ("clip.mp4", clip_bytes, "video/mp4")}, data={"top": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"]["spliced"] and body["result"]["score_kind"] == "rerank"
    assert len(body["result"]["candidates"]) == 3 and len(body["frames"]) == 8
