"""``v2p serve``: the HTTP service and page over one index, models loaded once and kept warm.

Routes (OpenAPI docs at ``/docs``):

* ``GET  /``              the page (plain HTML/CSS/JS shipped in the package: works offline)
* ``GET  /api/health``    index, encoder, prompt count, ratings stored
* ``POST /api/query``     multipart: ``file`` (a clip or image) or ``text``; ``top``
* ``POST /api/feedback``  JSON: a rating of one shown prompt (+1/-1), optionally the wanted prompt

Uploads are capped in size (413) and duration (422), checked by decoding, never by their
name; the temporary file is removed whatever happens. Queries run one at a time on the warm
models (the TFLite interpreters and torch modules are not shared between threads), and at
most ``max_pending`` wait: a burst beyond that gets 503 instead of exhausting memory.
"""

# no "from __future__ import annotations": FastAPI reads the route signatures at run time

import asyncio
import base64
import hashlib
import io
import os
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from v2p.errors import V2PError

STATIC = Path(__file__).resolve().parent / "static"
CHUNK = 1 << 20


@dataclass(frozen=True)
class ServeConfig:
    index: Path
    feedback: Path | None = None  # default: feedback.duckdb beside the index
    top: int = 5
    max_upload_mb: float = 64.0
    max_seconds: float = 120.0  # longest clip accepted
    max_pending: int = 16  # queries waiting or running; more get 503
    feedback_weights: bool = True  # rank with the weights fitted to this index's ratings, if any
    rerank: bool = False  # answer through the reranker (the index's trained cross-encoder, if any)
    splice: bool = False  # also compose a prompt from the candidates' phrases (implies rerank; ~190 ms)


class UploadRejected(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def sniff_suffix(head: bytes) -> str:
    """A file suffix from the content's magic bytes (the uploaded name is not trusted)."""
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if head[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[:2] == b"BM":
        return ".bmp"
    return ".video"  # containers are told apart by the decoders themselves


def clip_duration(path: Path) -> float | None:
    """Seconds of the first video stream (None for stills, or when the container does not say)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            if container.duration:
                return container.duration / 1_000_000
    except Exception:  # not a container PyAV reads: the decoder will say why
        return None
    return None


def thumbnails(frames: np.ndarray, height: int = 72) -> list[str]:
    """JPEG data URLs of a clip's sampled frames (the ones the query used), for the frame strip."""
    from PIL import Image

    from v2p.data.frames import shrink_frames

    out = []
    for f in shrink_frames(frames, height):
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(f)).save(buf, format="JPEG", quality=80)
        out.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode())
    return out


class QueryService:
    """The warm models and the feedback store behind the routes (usable without HTTP)."""

    def __init__(self, cfg: ServeConfig):
        from v2p.rerank.ratings import serving_weights
        from v2p.retrieval.search import Retriever
        from v2p.web.feedback import FeedbackStore

        self.cfg = cfg
        self.retriever = Retriever(cfg.index, weights=serving_weights(cfg.index, cfg.feedback_weights))
        feedback = cfg.feedback or Path(cfg.index) / "feedback.duckdb"
        self.feedback = FeedbackStore(feedback, index_path=str(Path(cfg.index).resolve()),
                                      encoder=self.retriever.index.encoder_spec)
        self.reranker, self.notes = None, []  # notes: what the reranker lacks (no LM, no trained model)
        if cfg.rerank or cfg.splice:
            from v2p.rerank.reranker import make_reranker

            self.reranker, self.notes = make_reranker(self.retriever, splice=cfg.splice)
        self._model_lock = threading.Lock()
        self.pending = 0

    def health(self) -> dict:
        return {"status": "ok", "index": str(self.cfg.index), "encoder": self.retriever.index.encoder_spec,
                "prompts": self.retriever.index.manifest["prompts"]["count"],
                "videos": (self.retriever.index.manifest.get("videos") or {}).get("count", 0),
                "ratings": self.feedback.count(), "weights": asdict(self.retriever.weights),
                "max_upload_mb": self.cfg.max_upload_mb, "rerank": self.reranker is not None,
                "cross_encoder": getattr(self.reranker, "cross", None) is not None, "splice": self.cfg.splice,
                "max_seconds": self.cfg.max_seconds}

    def answer_file(self, path: Path, name: str, digest: str, top: int) -> dict:
        seconds = clip_duration(path)
        if seconds is not None and seconds > self.cfg.max_seconds:
            raise UploadRejected(422, f"{name}: the clip is {seconds:.0f} s long; the limit is "
                                      f"{self.cfg.max_seconds:.0f} s")
        t0 = time.perf_counter()
        with self._model_lock:  # decoded once: the same frames answer the query and make the strip
            results, ok, clips = self.retriever.decode_queries([str(path)])
            if ok and self.reranker is not None:
                self.reranker.answer_decoded(results, ok, clips, top=top, splice=self.cfg.splice)
            elif ok:
                self.retriever.search_clips(clips, top=top).fill(results, ok)
            result = results[0]
        if result.error:
            raise UploadRejected(422, f"{name}: {result.error.split(': ', 1)[-1]}")
        payload = result.as_dict()
        payload["query"] = name
        return {"query_id": uuid.uuid4().hex, "clip_sha256": digest, "result": payload,
                "frames": thumbnails(clips[0]), "seconds": round(time.perf_counter() - t0, 3)}

    def answer_text(self, text: str, top: int) -> dict:
        t0 = time.perf_counter()
        with self._model_lock:
            result = self.retriever.query_texts([text], top=top)[0]
        return {"query_id": uuid.uuid4().hex, "clip_sha256": None, "result": result.as_dict(), "frames": [],
                "seconds": round(time.perf_counter() - t0, 3)}


async def _save_upload(upload, limit_bytes: int) -> tuple[Path, str, int]:
    """Stream an upload to a temporary file (suffix from its content); 413 past the limit."""
    digest = hashlib.sha256()
    size = 0
    head = b""
    fd, tmp = tempfile.mkstemp(prefix="v2p-upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > limit_bytes:
                    raise UploadRejected(413, f"{upload.filename}: larger than the {limit_bytes / 2**20:.0f} MB limit")
                if len(head) < 16:
                    head += chunk[:16]
                digest.update(chunk)
                fh.write(chunk)
        if size == 0:
            raise UploadRejected(422, f"{upload.filename}: empty file")
        path = Path(tmp).with_suffix(sniff_suffix(head))
        os.replace(tmp, path)
        return path, digest.hexdigest(), size
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def create_app(cfg: ServeConfig, service: QueryService | None = None):
    """The FastAPI application (an app factory: tests build one per index)."""
    from fastapi import FastAPI, File, Form, HTTPException, UploadFile
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, Field

    from v2p import __version__
    from v2p.web.feedback import Rating

    service = service or QueryService(cfg)
    app = FastAPI(title="v2p", version=__version__,
                  description="From a generated video back to its prompt: upload a clip, get prompts, rate them.")
    app.state.service = service
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    gate = asyncio.Semaphore(1)

    class FeedbackIn(BaseModel):
        query_id: str = Field(min_length=1, max_length=64)
        rating: int = Field(description="1 = good, -1 = bad")
        prompt_id: str | None = None
        prompt: str | None = Field(default=None, max_length=10_000)
        rank: int | None = None
        clip_sha256: str | None = Field(default=None, max_length=64)
        query_text: str | None = Field(default=None, max_length=10_000)
        wanted_prompt: str | None = Field(default=None, max_length=10_000)
        shown: list[dict] | None = None

    @app.exception_handler(UploadRejected)
    async def rejected(_, exc: UploadRejected):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/health")
    async def health():
        return await asyncio.to_thread(service.health)

    @app.post("/api/query")
    async def query(file: UploadFile | None = File(default=None), text: str | None = Form(default=None),
                    top: int = Form(default=cfg.top)):
        if (file is None) == (not text):
            raise HTTPException(422, "send either a file or text")
        if not 1 <= top <= 50:
            raise HTTPException(422, "top must be between 1 and 50")
        if service.pending >= cfg.max_pending:
            raise HTTPException(503, f"busy: {service.pending} queries in progress; try again in a moment")
        service.pending += 1
        path = None
        try:
            if file is not None:
                path, digest, _ = await _save_upload(file, int(cfg.max_upload_mb * 2**20))
            async with gate:  # one query at a time on the warm models; the rest wait here, bounded
                if path is not None:
                    return await asyncio.to_thread(service.answer_file, path, file.filename or "upload", digest, top)
                return await asyncio.to_thread(service.answer_text, text, top)
        finally:
            service.pending -= 1
            if path is not None:
                path.unlink(missing_ok=True)

    @app.post("/api/feedback")
    async def feedback(body: FeedbackIn):
        try:
            await asyncio.to_thread(service.feedback.add, Rating(**body.model_dump()))
        except V2PError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"stored": True}

    return app
