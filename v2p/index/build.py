"""``v2p index build``: embed a shard's prompts (and videos) into an index directory.

The work is split into chunks written under ``<out>.partial/``: each chunk's arrays and
rows are written to temporary names, renamed into place, and only then marked done. An
interrupted build (Ctrl-C, kill -9) resumed with ``resume=True`` skips the done chunks and
redoes the rest: chunk boundaries are a pure function of the (deterministic) input order
and the chunk size, so no row is embedded twice or lost. The finished index is assembled
in ``<out>.partial/final`` and renamed to ``<out>`` in one step: a crash never leaves a
half index that loads.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from v2p import __version__
from v2p._paths import refuse_existing
from v2p._threads import available_cpus
from v2p.data.bad_records import BadRecords
from v2p.data.frames import sample_frames
from v2p.data.prompts import read_prompts
from v2p.data.shard import Shard
from v2p.embed.base import Encoder
from v2p.embed.factory import create_encoder, parse_spec
from v2p.errors import V2PError, VideoDecodeError
from v2p.index import faiss_ops
from v2p.index.select import candidate_factories, needs_training, parse_size, training_size
from v2p.index.tune import TUNE_QUERIES, TuneResult, better, exact_neighbors, pick_queries, spread_rows, sweep
from v2p.index.store import (FORMAT_VERSION, PROMPTS_INDEX, PROMPTS_TABLE, VIDEO_FRAMES, VIDEOS_INDEX,
                             VIDEOS_TABLE, file_records, sha256_file, write_manifest)

# (stage, advance, total): total is given once when a stage starts (advance 0), None if unknown
ProgressFn = Callable[[str, int, int | None], None]
# test hook: "prompts:2" kills the process (SIGKILL) once chunk 2 is done; "videos:1:arrays" once chunk 1's
# arrays are written but before it is marked done (mid-chunk); "publish:0" once the final folder is complete
CRASH_ENV = "V2P_CRASH_AT"


@dataclass
class BuildConfig:
    encoder: str
    videos: bool = False
    generators: list[str] | None = None
    limit: int | None = None
    factory: str | None = None
    memory_budget: str = "4G"
    strip_flags: bool = False
    skip_bad: bool = False
    num_frames: int = 8
    prompt_chunk: int = 8192
    video_chunk: int = 256
    text_batch: int = 256
    full_hash: bool = False  # manifest hashes of the sources: full SHA-256 (an extra pass) or sampled
    target_recall: float = 0.95  # recall@10 against exact search the tuned index must reach
    tune_queries: str | None = None  # .npy of query vectors to tune on (default: the shard's own clips)

    def resume_key(self) -> dict:
        """Settings that must match for a resume to continue the same build."""
        keys = ("encoder", "videos", "generators", "limit", "strip_flags", "num_frames", "prompt_chunk",
                "video_chunk")
        return {k: getattr(self, k) for k in keys}


@dataclass
class BuildReport:
    out: Path
    prompts: int
    videos: int
    prompt_factory: str
    video_factory: str | None
    resumed_chunks: int
    skipped_outside_limit: int
    bad: dict
    seconds: float
    reader: dict = field(default_factory=dict)
    engine: str = "local"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["out"] = str(self.out)
        return d


def file_fingerprint(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


SAMPLE_BLOCK = 1 << 20


def sampled_sha256(path: Path, blocks: int = 8) -> str:
    """SHA-256 of the size and ``blocks`` evenly spread 1 MiB blocks (first and last included):
    catches a swapped, truncated or rewritten file without a full extra pass over terabytes of
    video archives. ``--full-hash`` records :func:`sha256_file` instead."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        if size <= blocks * SAMPLE_BLOCK:
            h.update(fh.read())
        else:
            for offset in np.linspace(0, size - SAMPLE_BLOCK, blocks).astype(np.int64):
                fh.seek(int(offset))
                h.update(fh.read(SAMPLE_BLOCK))
    return h.hexdigest()


def _replace_write(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)

    _replace_write(path, write)


def _save_parquet(path: Path, table: pa.Table) -> None:
    _replace_write(path, lambda tmp: pq.write_table(table, tmp))


def _maybe_crash(stage: str, chunk: int, phase: str | None = None) -> None:
    if os.environ.get(CRASH_ENV) == f"{stage}:{chunk}" + (f":{phase}" if phase else ""):
        os.kill(os.getpid(), signal.SIGKILL)


class _Chunks:
    """A folder of numbered chunks: ``chunk-00003.done`` holds the chunk's JSON record."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, k: int, suffix: str) -> Path:
        return self.folder / f"chunk-{k:05d}{suffix}"

    def done(self, k: int) -> dict | None:
        p = self.path(k, ".done")
        return json.loads(p.read_text()) if p.is_file() else None

    def mark_done(self, k: int, record: dict) -> None:
        _replace_write(self.path(k, ".done"), lambda tmp: tmp.write_text(json.dumps(record)))

    def completed(self) -> list[int]:
        return sorted(int(p.name[6:11]) for p in self.folder.glob("chunk-*.done"))


def _batched(iterable, n: int) -> Iterator[list]:
    it = iter(iterable)
    while batch := list(itertools.islice(it, n)):
        yield batch


class IndexBuilder:
    """One build of one index directory. ``run()`` does it all; stages are methods for clarity."""

    def __init__(self, shard: Shard, out: str | Path, config: BuildConfig, *, resume: bool = False,
                 overwrite: bool = False, on_progress: ProgressFn | None = None, encoder: Encoder | None = None):
        self.shard, self.out, self.config = shard, Path(out), config
        self.resume, self.overwrite = resume, overwrite
        self.progress = on_progress or (lambda stage, advance, total: None)
        self.work = self.out.with_name(self.out.name + ".partial")
        self.bad = BadRecords(skip_bad=config.skip_bad)
        parse_spec(config.encoder)  # fail on a bad spec before any work
        self._encoder = encoder
        self.resumed_chunks = 0
        self._created_work = False
        self.outside_limit = 0
        self.reader_stats: dict = {}

    engine = "local"  # what embeds: this process (a Ray build says how many actors on what)

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            self._encoder = create_encoder(self.config.encoder)
        return self._encoder

    # -- stage 0: the work folder ----------------------------------------------------------
    def _prepare(self) -> None:
        refuse_existing(self.out, self.overwrite)
        # the weights' fingerprint too: retraining a v2p:<dir> model between crash and resume
        # must not mix vectors of two models in one index
        state = {"config": {**self.config.resume_key(), "encoder_fingerprint": self.encoder.fingerprint},
                 "prompts": file_fingerprint(self.shard.prompts_path),
                 "video_sources": [file_fingerprint(s.path) for s in self.shard.video_sources]
                 if self.config.videos else []}
        if self.config.videos and not self.encoder.has_video:
            raise V2PError(f"--videos needs an encoder for videos; {self.config.encoder} is text-only")
        state_path = self.work / "build.json"
        if self.work.exists() and self.overwrite and not self.resume:
            shutil.rmtree(self.work)  # --overwrite starts over: a stale partial build goes too
        if self.work.exists():
            if not self.resume:
                raise V2PError(f"an interrupted build of {self.out} is at {self.work}; pass --resume to continue it, "
                               "or --overwrite to start over")
            previous = json.loads(state_path.read_text()) if state_path.is_file() else None
            if previous != state:
                raise V2PError(f"cannot resume {self.work}: it was started with other settings or inputs "
                               f"({_first_difference(previous, state)}); delete it to start over")
        else:
            self.work.mkdir(parents=True)
            state_path.write_text(json.dumps(state, indent=2))
            self._created_work = True

    # -- stage 1: prompts ------------------------------------------------------------------
    def _prompt_rows(self, uuid_map: dict[str, str]) -> Iterator[pa.Table]:
        """Unique prompts (first occurrences) up to --limit; fills uuid -> prompt_id for every valid row."""
        reader = read_prompts(self.shard.prompts_path, strip_flags=self.config.strip_flags, dedup=False, bad=self.bad)
        limit = self.config.limit
        taken = 0
        for batch in reader:
            if self.config.videos:
                uuid_map.update(zip(batch.column("uuid").to_pylist(), batch.column("prompt_id").to_pylist()))
            if limit is not None and taken >= limit:
                if not self.config.videos:
                    break
                continue
            firsts = pa.Table.from_batches([batch]).filter(batch.column("first_occurrence"))
            if limit is not None and taken + firsts.num_rows > limit:
                firsts = firsts.slice(0, limit - taken)
            taken += firsts.num_rows
            if firsts.num_rows:
                yield firsts.drop_columns(["first_occurrence"])
        self.reader_stats = reader.stats.as_dict()

    def _rechunk(self, tables: Iterator[pa.Table], size: int) -> Iterator[pa.Table]:
        pending: list[pa.Table] = []
        count = 0
        for t in tables:
            pending.append(t)
            count += t.num_rows
            while count >= size:
                merged = pa.concat_tables(pending)
                yield merged.slice(0, size)
                rest = merged.slice(size)
                pending, count = ([rest] if rest.num_rows else []), rest.num_rows
        if count:
            yield pa.concat_tables(pending)

    def embed_prompts(self, uuid_map: dict[str, str]) -> _Chunks:
        chunks = _Chunks(self.work / "prompts")
        self.progress("embedding prompts", 0, self.config.limit)
        for k, table, finished in self._prompt_chunks(chunks, uuid_map):
            if finished:
                self.progress("embedding prompts", table.num_rows, None)
                continue
            vectors = self.encoder.encode_text(
                table.column("prompt").to_pylist(), batch_size=self.config.text_batch,
                on_progress=lambda n: self.progress("embedding prompts", n, None))
            self._write_prompt_chunk(chunks, k, table, vectors)
        return chunks

    def _prompt_chunks(self, chunks: _Chunks, uuid_map: dict[str, str]) -> Iterator[tuple[int, pa.Table, bool]]:
        """(k, rows, finished) per chunk of ``prompt_chunk`` unique prompts; finished ones are
        counted as resumed here, so an engine only embeds the others."""
        for k, table in enumerate(self._rechunk(self._prompt_rows(uuid_map), self.config.prompt_chunk)):
            finished = chunks.done(k) is not None
            if finished:
                self.resumed_chunks += 1
            yield k, table, finished

    @staticmethod
    def _write_prompt_chunk(chunks: _Chunks, k: int, table: pa.Table, vectors: np.ndarray) -> None:
        """A chunk's arrays and rows under temporary names, renamed, then marked done."""
        _save_npy(chunks.path(k, ".npy"), vectors)
        _save_parquet(chunks.path(k, ".parquet"), table)
        _maybe_crash("prompts", k, "arrays")
        chunks.mark_done(k, {"rows": table.num_rows})
        _maybe_crash("prompts", k)

    # -- stage 2: videos -------------------------------------------------------------------
    def _decode(self, item: tuple) -> tuple:
        ref, data = item
        clip, reason = decode_clip(data, self.config.num_frames, str(ref), self.encoder.frame_short_side)
        return ref, clip, reason

    def _video_chunks(self, chunks: _Chunks) -> Iterator[tuple[int, list[tuple], bool]]:
        """(k, [(ref, byte range)], finished) per chunk of ``video_chunk`` videos. A finished
        chunk is taken over from the record it left (bad records, videos outside --limit), so an
        engine only embeds the others, and a resume never reads their bytes again."""
        entries = self.shard.video_entries(self.bad, self.config.generators)
        for k in itertools.count():
            items = list(itertools.islice(entries, self.config.video_chunk))
            if not items:
                return
            record = chunks.done(k)
            if record is not None:
                self.resumed_chunks += 1
                for reason, n in record["bad"].items():
                    self.bad.counts[reason] += n
                self.outside_limit += record["outside_limit"]
            yield k, items, record is not None

    def _sort_video_chunk(self, items: list, uuid_map: dict[str, str], indexed: set[str]
                          ) -> tuple[list[tuple], Counter, int]:
        """A chunk's videos to embed as (ref, byte range, prompt_id); an unknown uuid is a bad
        record, a video whose prompt is beyond --limit is counted, not embedded."""
        bad: Counter = Counter()
        outside = 0
        wanted = []
        for ref, source in items:
            pid = uuid_map.get(ref.uuid)
            if pid is None:
                self.bad.add(ref.container, f"member {ref.member}", "unknown_uuid",
                             f"uuid {ref.uuid} is not in {self.shard.prompts_path.name}")
                bad["unknown_uuid"] += 1
            elif pid not in indexed:
                outside += 1  # its prompt is beyond --limit: not bad, just not in this index
            else:
                wanted.append((ref, source, pid))
        return wanted, bad, outside

    def _undecodable(self, ref, reason: str, bad: Counter) -> None:
        self.bad.add(ref.container, f"member {ref.member}", "undecodable_video", reason)
        bad["undecodable_video"] += 1

    @staticmethod
    def _video_row(ref, pid: str) -> dict:
        return {"uuid": ref.uuid, "generator": ref.generator, "prompt_id": pid, "member": ref.member,
                "container": ref.container}

    def _write_video_chunk(self, chunks: _Chunks, k: int, n_items: int, rows: list[dict],
                           frames: np.ndarray | None, pooled: np.ndarray | None, bad: Counter, outside: int) -> None:
        """A chunk's per-frame vectors, pooled keys and rows, then its done record."""
        if frames is None:
            frames = np.empty((0, self.config.num_frames, self.encoder.frame_dim), np.float32)
            pooled = np.empty((0, self.encoder.video_key_dim), np.float32)
        _save_npy(chunks.path(k, ".frames.npy"), frames.astype(np.float16))
        _save_npy(chunks.path(k, ".npy"), pooled)
        table = pa.Table.from_pylist(rows, schema=pa.schema([(n, pa.string()) for n in
                                                             ("uuid", "generator", "prompt_id", "member", "container")]))
        _save_parquet(chunks.path(k, ".parquet"), table)
        _maybe_crash("videos", k, "arrays")
        chunks.mark_done(k, {"rows": len(rows), "bad": dict(bad), "outside_limit": outside})
        self.outside_limit += outside
        self.progress("embedding videos", n_items, None)
        _maybe_crash("videos", k)

    def _count_videos(self) -> int:
        """Videos to go through, for a progress total: a pass over names only (tar headers), its
        bad records left to the real pass."""
        wanted = set(self.config.generators) if self.config.generators else None
        return sum(1 for ref in self.shard.video_refs(BadRecords(skip_bad=True))
                   if wanted is None or ref.generator in wanted)

    def embed_videos(self, uuid_map: dict[str, str], indexed: set[str]) -> _Chunks:
        """Decode chunk k+1 in threads while chunk k is encoded: the encoder never waits on frames
        it could have had (decoders release the GIL). Bytes are read in this thread, in order."""
        chunks = _Chunks(self.work / "videos")
        self.progress("embedding videos", 0, self._count_videos())
        pending = None
        with ThreadPoolExecutor(max_workers=available_cpus()) as pool:
            for k, items, finished in self._video_chunks(chunks):
                if finished:
                    self.progress("embedding videos", len(items), None)
                    continue
                started = self._start_video_chunk(k, items, uuid_map, indexed, pool)
                if pending is not None:
                    self._finish_video_chunk(chunks, *pending)
                pending = started
            if pending is not None:
                self._finish_video_chunk(chunks, *pending)
        return chunks

    def _start_video_chunk(self, k: int, items: list, uuid_map: dict[str, str], indexed: set[str],
                           pool: ThreadPoolExecutor) -> tuple:
        """Sort a chunk's videos and submit the decodes (bytes read here, in order)."""
        wanted, bad, outside = self._sort_video_chunk(items, uuid_map, indexed)
        futures = [(pool.submit(self._decode, (ref, source())), pid) for ref, source, pid in wanted]
        return k, len(items), futures, bad, outside

    def _finish_video_chunk(self, chunks: _Chunks, k: int, n_items: int, wanted: list, bad: Counter,
                            outside: int) -> None:
        rows, clips = [], []
        for future, pid in wanted:
            ref, clip, reason = future.result()
            if reason is not None:
                self._undecodable(ref, reason, bad)
                continue
            rows.append(self._video_row(ref, pid))
            clips.append(clip)
        frames = pooled = None
        if clips:
            frames = self.encoder.encode_frames(clips)
            pooled = self.encoder.video_keys(frames)
        self._write_video_chunk(chunks, k, n_items, rows, frames, pooled, bad, outside)

    # -- stage 3: assemble -----------------------------------------------------------------
    def _chunk_ids(self, chunks: _Chunks) -> list[int]:
        ids = chunks.completed()
        if ids != list(range(len(ids))):
            raise V2PError(f"{chunks.folder}: chunks {ids} are not contiguous; delete {self.work} and rebuild")
        return ids

    def _assemble_index(self, chunks: _Chunks, name: str, factory: str | None, final: Path,
                        queries: tuple[np.ndarray, str] | None) -> tuple[str, int, TuneResult | None]:
        """Build the index of one chunk folder. With tuning queries, every candidate type that fits
        the budget (or ``--factory`` alone) is built and swept, and the fastest one that reaches the
        target recall@10 against exact search is written, with its search parameters."""
        ids = self._chunk_ids(chunks)
        arrays = [np.load(chunks.path(k, ".npy"), mmap_mode="r") for k in ids]
        n = sum(len(a) for a in arrays)
        dim = self.encoder.dim if name == "prompts" else self.encoder.video_key_dim
        if n == 0:
            raise V2PError(f"nothing to index for {name}: no valid {'prompts' if name == 'prompts' else 'videos'}")
        budget = parse_size(self.config.memory_budget)
        candidates = [factory] if factory else candidate_factories(n, dim, budget)
        truth = None
        if queries is not None:
            self.progress(f"exact neighbours for tuning {name}", 0, None)
            truth = exact_neighbors(arrays, queries[0])
        best_index, best = None, None
        for candidate in candidates:
            index = self._build_one(arrays, n, dim, name, candidate)
            if truth is None:
                best_index = index
                break
            self.progress(f"tuning {name} ({candidate})", 0, None)
            result = sweep(index, candidate, queries[0], truth, target=self.config.target_recall, source=queries[1])
            if better(best, result):
                best_index, best = index, result
            del index
        faiss_ops.write_index(best_index, str(final / f"{name}.faiss"))
        tables = [pq.read_table(chunks.path(k, ".parquet")) for k in ids]
        pq.write_table(pa.concat_tables(tables, promote_options="default"), final / f"{name}.parquet")
        return (best.factory if best else candidates[0]), n, best

    def _build_one(self, arrays: list[np.ndarray], n: int, dim: int, name: str, factory: str):
        train = None
        if needs_training(factory):
            want = training_size(factory, n)
            picks = np.linspace(0, n - 1, want).astype(np.int64)
            allv = np.concatenate([np.asarray(a) for a in arrays]) if n <= 200_000 else None
            train = allv[picks] if allv is not None else _gather(arrays, picks)
        self.progress(f"indexing {name}", 0, n)
        try:
            return faiss_ops.build_index(factory, dim, train, (np.asarray(a) for a in arrays),
                                         on_add=lambda m: self.progress(f"indexing {name}", m, None))
        except RuntimeError as exc:
            raise V2PError(f"FAISS could not build {factory!r} over {n} vectors: {str(exc).splitlines()[0]}") from None

    def _tuning_queries(self, prompt_chunks: _Chunks, video_chunks: _Chunks | None
                        ) -> tuple[np.ndarray, str] | None:
        """Query vectors for tuning the prompt index: ``--tune-queries``, else the shard's own clips
        (pooled into the text space, as a query clip is), else a sample of the prompts themselves."""
        if self.config.tune_queries:
            path = Path(self.config.tune_queries)
            try:
                q = np.load(path)
            except (OSError, ValueError) as exc:
                raise V2PError(f"{path}: cannot read tuning queries ({exc})") from None
            if q.ndim != 2 or q.shape[1] != self.encoder.dim:
                raise V2PError(f"{path}: tuning queries must be [n, {self.encoder.dim}], not {list(q.shape)}")
            return pick_queries(q), f"{path.name} ({min(len(q), TUNE_QUERIES)} vectors)"
        if video_chunks is not None:
            frames = self._sample_chunks(video_chunks, ".frames.npy")
            if len(frames):
                clips = self.encoder.pool(frames)
                return np.ascontiguousarray(clips, np.float32), f"clips ({len(frames)} of the shard's videos)"
        vectors = self._sample_chunks(prompt_chunks, ".npy")
        return vectors, f"prompts ({len(vectors)} of the index's own)"

    def _video_key_queries(self, video_chunks: _Chunks) -> tuple[np.ndarray, str]:
        keys = self._sample_chunks(video_chunks, ".npy")
        return keys, f"videos ({len(keys)} of the index's own)"

    def _sample_chunks(self, chunks: _Chunks, suffix: str) -> np.ndarray:
        """Up to TUNE_QUERIES rows spread evenly over a chunk folder's arrays, as float32."""
        arrays = [np.load(chunks.path(k, suffix), mmap_mode="r") for k in self._chunk_ids(chunks)]
        total = sum(len(a) for a in arrays)
        if total == 0:
            return np.empty((0,), np.float32)
        return np.asarray(_gather(arrays, spread_rows(total)), np.float32)

    def _assemble_frames(self, chunks: _Chunks, final: Path) -> tuple[int, int]:
        ids = self._chunk_ids(chunks)
        parts = [np.load(chunks.path(k, ".frames.npy"), mmap_mode="r") for k in ids]
        n = sum(len(p) for p in parts)
        t, f = self.config.num_frames, self.encoder.frame_dim
        # plain writes, not a writable memmap: on a full disk a write fails with ENOSPC (reported),
        # where a memmap store kills the process with SIGBUS
        with open(final / VIDEO_FRAMES, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float16)),
                                                      "fortran_order": False, "shape": (n, t, f)})
            for p in parts:
                fh.write(np.ascontiguousarray(p, dtype=np.float16).tobytes())
        return t, f

    def finished_chunks(self) -> int:
        """Chunks finished in the work folder (what a --resume would keep)."""
        return sum(1 for _ in self.work.glob("*/chunk-*.done")) if self.work.exists() else 0

    def run(self) -> BuildReport:
        """Build; a failure before any chunk was finished leaves no work folder behind (a retry
        needs no --resume and no clean-up), one after keeps it for --resume. A full disk is
        reported as such; nothing is published, so no index that loads is left half written."""
        try:
            return self._run()
        except OSError as exc:
            if not _disk_full(exc):
                raise
            shutil.rmtree(self.work / "final", ignore_errors=True)  # frees the space the assembly took
            kept = self.finished_chunks()
            if self._created_work and kept == 0:
                shutil.rmtree(self.work, ignore_errors=True)
            hint = (f"free space and run again with --resume ({kept} finished chunks in {self.work} are kept)"
                    if kept else "free space and run again")
            raise V2PError(f"no space left on the device writing {exc.filename or self.work}; {hint}") from None
        except BaseException:
            if self._created_work and self.finished_chunks() == 0:
                shutil.rmtree(self.work, ignore_errors=True)
            raise

    def _run(self) -> BuildReport:
        t0 = time.perf_counter()
        self._prepare()
        uuid_map: dict[str, str] = {}
        prompt_chunks = self.embed_prompts(uuid_map)
        final = self.work / "final"
        shutil.rmtree(final, ignore_errors=True)
        final.mkdir()
        video_chunks = row_of = None
        if self.config.videos:  # before the prompt index, so its tuning can use the shard's clips
            prompt_ids = [pid for k in self._chunk_ids(prompt_chunks)
                          for pid in pq.read_table(prompt_chunks.path(k, ".parquet"), columns=["prompt_id"])
                          .column(0).to_pylist()]
            row_of = {pid: i for i, pid in enumerate(prompt_ids)}
            video_chunks = self.embed_videos(uuid_map, set(row_of))
        prompt_factory, n_prompts, prompt_tune = self._assemble_index(
            prompt_chunks, "prompts", self.config.factory, final, self._tuning_queries(prompt_chunks, video_chunks))
        videos_meta, n_videos, video_factory = None, 0, None
        if self.config.videos:
            video_factory, n_videos, video_tune = self._assemble_index(video_chunks, "videos", None, final,
                                                                       self._video_key_queries(video_chunks))
            t, f = self._assemble_frames(video_chunks, final)
            vt = pq.read_table(final / VIDEOS_TABLE)
            vt = vt.append_column("prompt_row", pa.array([row_of[p] for p in vt.column("prompt_id").to_pylist()],
                                                         pa.int64()))
            pq.write_table(vt, final / VIDEOS_TABLE)
            gens = sorted(set(vt.column("generator").to_pylist()))
            videos_meta = {"count": n_videos, "factory": video_factory, "index_file": VIDEOS_INDEX,
                           "table_file": VIDEOS_TABLE, "frames_file": VIDEO_FRAMES, "frames_per_video": t,
                           "frame_dim": f, "generators": gens, "pooling": self.encoder.poolings[0],
                           "dim": self.encoder.video_key_dim, "search": video_tune.params,
                           "tuning": video_tune.as_dict()}
        manifest = {
            "format_version": FORMAT_VERSION, "v2p_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "encoder": self.encoder.spec, "encoder_fingerprint": self.encoder.fingerprint, "dim": self.encoder.dim,
            "metric": "inner_product", "normalized": True,
            "prompts": {"count": n_prompts, "factory": prompt_factory, "index_file": PROMPTS_INDEX,
                        "table_file": PROMPTS_TABLE, "search": prompt_tune.params, "tuning": prompt_tune.as_dict()},
            "videos": videos_meta,
            "source": {"hash": "sha256" if self.config.full_hash else "sampled_sha256",
                       "prompts": {**file_fingerprint(self.shard.prompts_path),
                                   "sha256": self._hash(self.shard.prompts_path)},
                       "video_sources": [{**file_fingerprint(s.path), "sha256": self._hash(s.path)}
                                         if s.path.is_file() else file_fingerprint(s.path)
                                         for s in self.shard.video_sources] if self.config.videos else []},
            "build": {"engine": self.engine, "strip_flags": self.config.strip_flags, "limit": self.config.limit,
                      "memory_budget": self.config.memory_budget, "skip_bad": self.config.skip_bad,
                      "bad_records": self.bad.summary()["by_reason"], "skipped_outside_limit": self.outside_limit},
        }
        manifest["files"] = file_records(final)
        write_manifest(final, manifest)
        _maybe_crash("publish", 0)
        self._publish(final)
        return BuildReport(self.out, n_prompts, n_videos, prompt_factory, video_factory, self.resumed_chunks,
                           self.outside_limit, self.bad.summary(), time.perf_counter() - t0, self.reader_stats,
                           self.engine)

    def _hash(self, path: Path) -> str:
        return sha256_file(path) if self.config.full_hash else sampled_sha256(path)

    def _publish(self, final: Path) -> None:
        """Swap the finished folder into place: readers see the old index or the new one, never half.

        Over an existing index the two folders are exchanged in one atomic ``renameat2`` call
        (Linux), so there is no moment without an index at ``out``. Elsewhere the old one is
        first renamed aside to ``<out>.old-<pid>``, which :meth:`IndexDir.open` names if a crash
        strands it there."""
        if self.out.exists():
            if exchange_paths(final, self.out):
                shutil.rmtree(final, ignore_errors=True)  # now holds the old index
                shutil.rmtree(self.work, ignore_errors=True)
                return
            old = self.out.with_name(self.out.name + f".old-{os.getpid()}")
            os.replace(self.out, old)
            os.replace(final, self.out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(final, self.out)
        shutil.rmtree(self.work, ignore_errors=True)


def decode_clip(data: bytes, num_frames: int, name: str, short_side: int | None) -> tuple[np.ndarray | None, str | None]:
    """(frames, None), or (None, why) for a clip that cannot be decoded: a bad record, not a crash.
    Both engines decode through here (the Ray build on its workers)."""
    try:
        return sample_frames(data, num_frames, name=name, short_side=short_side), None
    except VideoDecodeError as exc:
        return None, exc.reason


def _disk_full(exc: OSError) -> bool:
    """ENOSPC / EDQUOT, or Arrow's short-write error for the same cause (it carries no errno)."""
    text = str(exc)
    return (exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text
            or ("requested and" in text and "written" in text))


def exchange_paths(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _gather(arrays: list[np.ndarray], picks: np.ndarray) -> np.ndarray:
    """Rows ``picks`` (sorted, global numbering) from a list of memory-mapped chunks."""
    out, start = [], 0
    for a in arrays:
        local = picks[(picks >= start) & (picks < start + len(a))] - start
        if len(local):
            out.append(np.asarray(a[local]))
        start += len(a)
    return np.concatenate(out)


def _first_difference(previous: dict | None, current: dict) -> str:
    if previous is None:
        return "no build.json"
    for key in ("config", "prompts", "video_sources"):
        if previous.get(key) != current.get(key):
            if key == "config":
                diffs = [k for k in current["config"] if previous["config"].get(k) != current["config"][k]]
                return "settings differ: " + ", ".join(diffs)
            return f"{key.replace('_', ' ')} changed"
    return "unknown"


ENGINES = ("local", "ray")


def make_builder(shard: Shard, out: str | Path, config: BuildConfig, *, engine: str = "local",
                 ray_address: str | None = None, ray_actors: int | None = None, **kwargs) -> IndexBuilder:
    """The builder of an engine: ``local`` (this process) or ``ray`` (a Ray cluster embeds; see
    :mod:`v2p.index.ray_build`). Both write the same chunks and the same index."""
    if engine == "local":
        if ray_address or ray_actors:
            raise V2PError("--ray-address and --ray-actors need --engine ray")
        return IndexBuilder(shard, out, config, **kwargs)
    if engine == "ray":
        from v2p.index.ray_build import RayIndexBuilder

        return RayIndexBuilder(shard, out, config, ray_address=ray_address, ray_actors=ray_actors, **kwargs)
    raise V2PError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def build_index(shard: Shard, out: str | Path, config: BuildConfig, **kwargs) -> BuildReport:
    """Build an index directory (see :func:`make_builder` for ``engine=``); the API behind ``v2p index build``."""
    return make_builder(shard, out, config, **kwargs).run()
