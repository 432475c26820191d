"""``v2p index build --engine ray``: the same build, its embedding spread over a Ray cluster.

Only the two embedding stages change. The driver reads the prompts file and lists the video
archives as the single-process build does (same validation, same bad records, same chunk
boundaries); the chunks it has not finished become a Ray Dataset:

* prompts: rows of prompt text -> an actor pool of text encoders (``map_batches``);
* videos: rows of *byte ranges* (file, offset, size: a tar member or a loose clip), never the
  bytes, so each worker reads its clips from a path every node shares -> decode and frame
  sampling -> an actor pool of video encoders, one model per actor.

With GPUs in the cluster the encoders are GPU actors (one GPU each, large batches) and decoding
runs as separate CPU tasks; on CPUs only, Ray fuses decoding into the CPU actors, so no frames
cross processes. The driver takes the vectors back in order and writes each chunk with the very
code the single-process build uses (arrays, rows, ``.done`` record), then the index is assembled,
tuned and published as there. So a Ray build and a local build write the same chunks: either
one resumes the other (``--resume``), and finished chunks are never recomputed.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from v2p.errors import V2PError
from v2p.index.build import IndexBuilder, _Chunks

GPU_CLIP_BATCH, CPU_CLIP_BATCH = 64, 8
GPU_TEXT_BATCH, CPU_TEXT_BATCH = 1024, 256
NO_FRAMES = (0, 0, 0, 0)


@dataclass(frozen=True)
class RayPlan:
    """How many encoder actors, on what, with what batches: a pure function of the cluster."""

    actors: int
    device: str
    gpus_per_actor: float
    clip_batch: int
    text_batch: int


def plan_for(resources: dict[str, float], actors: int | None = None) -> RayPlan:
    """One actor per GPU when the cluster has GPUs, else one per CPU (each decodes and embeds)."""
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    if gpus:
        return RayPlan(actors or gpus, "cuda", 1.0, GPU_CLIP_BATCH, GPU_TEXT_BATCH)
    return RayPlan(actors or max(1, cpus), "cpu", 0.0, CPU_CLIP_BATCH, CPU_TEXT_BATCH)


# -- what runs on the workers ----------------------------------------------------------------
def decode_batch(batch: dict[str, np.ndarray], num_frames: int, short_side: int | None) -> dict[str, np.ndarray]:
    """Read each clip's bytes from its byte range and sample its frames. A clip that fails keeps
    its row with the reason, so the driver records it as the single-process build would."""
    from v2p.data.videos import ByteRange
    from v2p.index.build import decode_clip

    frames, shapes, errors = [], [], []
    for path, offset, size, name in zip(batch["path"], batch["offset"], batch["size"], batch["name"]):
        try:
            clip, reason = decode_clip(ByteRange(str(path), int(offset), int(size))(), num_frames, str(name),
                                       short_side)
        except OSError as exc:  # the byte range is unreadable from this worker
            clip, reason = None, f"cannot read the clip on this worker: {exc}"
        frames.append(b"" if clip is None else np.ascontiguousarray(clip).tobytes())
        shapes.append(NO_FRAMES if clip is None else clip.shape)
        errors.append(reason or "")
    return {"chunk": batch["chunk"], "pos": batch["pos"], "frames": np.array(frames, dtype=object),
            "shape": np.array(shapes, dtype=np.int64).reshape(-1, 4), "error": np.array(errors, dtype=object)}


class _EncoderActor:
    """Loads the encoder once per actor and checks it is the driver's model (same fingerprint):
    nodes with other weights would otherwise mix two models' vectors in one index."""

    def __init__(self, spec: str, device: str, fingerprint: str):
        os.environ.setdefault("V2P_THREADS", "1")  # one CPU per actor: torch and FAISS threads to match
        from v2p.embed.factory import create_encoder

        self.encoder = create_encoder(spec, device)
        if self.encoder.fingerprint != fingerprint:
            raise RuntimeError(f"this worker's {spec} weights differ from the driver's (fingerprint "
                               f"{self.encoder.fingerprint[:12]} vs {fingerprint[:12]}); install the same "
                               "v2p and model files on every node")


class ClipEncoderActor(_EncoderActor):
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = [i for i, e in enumerate(batch["error"]) if not e]
        enc = self.encoder
        n = len(batch["pos"])
        t = int(next((batch["shape"][i][0] for i in ok), 1))
        frames = np.zeros((n, t, enc.frame_dim), np.float16)
        keys = np.zeros((n, enc.video_key_dim), np.float32)
        if ok:
            clips = [np.frombuffer(batch["frames"][i], np.uint8).reshape(batch["shape"][i]) for i in ok]
            vectors = enc.encode_frames(clips, batch_size=len(clips))
            frames[ok] = vectors.astype(np.float16)
            keys[ok] = enc.video_keys(vectors)
        return {"chunk": batch["chunk"], "pos": batch["pos"], "frames": frames, "key": keys,
                "error": batch["error"]}


class TextEncoderActor(_EncoderActor):
    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.encoder.encode_text([str(p) for p in batch["prompt"]], batch_size=len(batch["prompt"]))
        return {"chunk": batch["chunk"], "pos": batch["pos"], "vector": vectors}


# -- the driver --------------------------------------------------------------------------------
def connect(address: str | None) -> bool:
    """Join the cluster at ``address`` (or ``RAY_ADDRESS``), or start a local one; True when this
    call started Ray (so the build shuts it down again)."""
    try:
        import ray
    except ImportError:
        raise V2PError("--engine ray needs Ray Data: pip install 'v2p[distributed]'") from None
    if ray.is_initialized():
        return False
    import logging

    try:
        ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise V2PError(f"cannot reach the Ray cluster at {address or os.environ.get('RAY_ADDRESS')}: {exc}") from None
    return True


def _data_context():
    import logging

    import ray.data

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its per-dataset lines would break v2p's bars
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # chunks complete in order: the driver buffers one at a time
    ctx.enable_progress_bars = False  # v2p draws its own
    return ctx


class _ChunkCollector:
    """Gathers the rows of each chunk as results stream in; yields a chunk once all its rows are there."""

    def __init__(self, expected: dict[int, int]):
        self.expected = expected
        self.parts: dict[int, list[dict[str, np.ndarray]]] = {}
        self.counts: Counter = Counter()

    def add(self, batch: dict[str, np.ndarray]) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        chunks = batch["chunk"]
        for k in np.unique(chunks):
            mask = chunks == k
            self.parts.setdefault(int(k), []).append({name: col[mask] for name, col in batch.items()})
            self.counts[int(k)] += int(mask.sum())
        for k in sorted(k for k in self.parts if self.counts[k] == self.expected[k]):
            parts = self.parts.pop(k)
            merged = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
            order = np.argsort(merged["pos"], kind="stable")
            yield k, {name: col[order] for name, col in merged.items()}

    def missing(self) -> list[int]:
        return sorted(k for k in self.expected if self.counts[k] != self.expected[k] or k in self.parts)


class RayIndexBuilder(IndexBuilder):
    """:class:`IndexBuilder` whose prompt and video embedding run as Ray Data pipelines."""

    def __init__(self, *args, ray_address: str | None = None, ray_actors: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ray_address, self.ray_actors = ray_address, ray_actors
        self.plan: RayPlan | None = None

    def _run(self):
        started = connect(self.ray_address)
        try:
            import ray

            self.plan = plan_for(ray.cluster_resources(), self.ray_actors)
            _data_context()
            return super()._run()
        finally:
            if started:
                import ray

                ray.shutdown()

    @property
    def engine(self) -> str:
        plan = self.plan
        return f"ray ({plan.actors} {plan.device} actors)" if plan else "ray"

    def _actor_args(self, batch: int, blocks: int) -> dict:
        """map_batches arguments of an encoder actor pool: one model per actor, a GPU each when
        the cluster has GPUs (then decoding stays in CPU tasks), else a CPU each."""
        import ray.data

        plan = self.plan
        resources = {"num_gpus": plan.gpus_per_actor} if plan.gpus_per_actor else {"num_cpus": 1}
        return {"fn_constructor_kwargs": {"spec": self.config.encoder, "device": plan.device,
                                          "fingerprint": self.encoder.fingerprint},
                "batch_size": batch, "compute": ray.data.ActorPoolStrategy(size=max(1, min(plan.actors, blocks))),
                "batch_format": "numpy", **resources}

    def _stream(self, ds, expected: dict[int, int]) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Each finished chunk's results, in order; a worker failure becomes one clear error."""
        import ray.exceptions

        collector = _ChunkCollector(expected)
        try:
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                yield from collector.add(batch)
        except ray.exceptions.RayError as exc:
            raise V2PError(f"the Ray build failed on a worker: {_root_cause(exc)}") from None
        if collector.missing():
            raise V2PError(f"Ray returned no vectors for chunks {collector.missing()}; run again with --resume")

    # -- prompts -----------------------------------------------------------------------------
    def embed_prompts(self, uuid_map: dict[str, str]) -> _Chunks:
        import ray.data

        chunks = _Chunks(self.work / "prompts")
        self.progress("embedding prompts", 0, self.config.limit)
        todo: dict[int, pa.Table] = {}
        for k, table, finished in self._prompt_chunks(chunks, uuid_map):
            if finished:
                self.progress("embedding prompts", table.num_rows, None)
            else:
                todo[k] = table
        if not todo:
            return chunks
        step = self.plan.text_batch  # one block per batch, so every actor gets work
        inputs = [pa.table({"chunk": pa.array(np.full(t.num_rows, k, np.int64)),
                            "pos": pa.array(np.arange(t.num_rows, dtype=np.int64)), "prompt": t.column("prompt")})
                  .slice(start, step) for k, t in todo.items() for start in range(0, t.num_rows, step)]
        ds = ray.data.from_arrow(inputs).map_batches(TextEncoderActor, **self._actor_args(step, len(inputs)))
        for k, result in self._stream(ds, {k: t.num_rows for k, t in todo.items()}):
            self._write_prompt_chunk(chunks, k, todo.pop(k), np.asarray(result["vector"], np.float32))
            self.progress("embedding prompts", len(result["pos"]), None)
        return chunks

    # -- videos ------------------------------------------------------------------------------
    def embed_videos(self, uuid_map: dict[str, str], indexed: set[str]) -> _Chunks:
        import ray.data

        chunks = _Chunks(self.work / "videos")
        self.progress("embedding videos", 0, self._count_videos())
        rows: list[dict] = []
        pending: dict[int, tuple] = {}
        for k, items, finished in self._video_chunks(chunks):
            if finished:
                self.progress("embedding videos", len(items), None)
                continue
            wanted, bad, outside = self._sort_video_chunk(items, uuid_map, indexed)
            if not wanted:  # nothing to embed: written now, as the local build would
                self._write_video_chunk(chunks, k, len(items), [], None, None, bad, outside)
                continue
            pending[k] = (len(items), wanted, bad, outside)
            rows += [{"chunk": k, "pos": i, "path": src.path, "offset": src.offset, "size": src.size,
                      "name": str(ref)} for i, (ref, src, _) in enumerate(wanted)]
        if not rows:
            return chunks
        plan = self.plan
        blocks = max(1, min(len(rows), -(-len(rows) // plan.clip_batch)))
        ds = (ray.data.from_items(rows, override_num_blocks=blocks)
              .map_batches(decode_batch, fn_kwargs={"num_frames": self.config.num_frames,
                                                    "short_side": self.encoder.frame_short_side},
                           batch_size=plan.clip_batch, num_cpus=1, batch_format="numpy")
              .map_batches(ClipEncoderActor, **self._actor_args(plan.clip_batch, blocks)))
        for k, result in self._stream(ds, {k: len(p[1]) for k, p in pending.items()}):
            n_items, wanted, bad, outside = pending.pop(k)
            keep = []
            for i, (ref, _, pid) in enumerate(wanted):
                if result["error"][i]:
                    self._undecodable(ref, str(result["error"][i]), bad)
                else:
                    keep.append(i)
            rows_k = [self._video_row(wanted[i][0], wanted[i][2]) for i in keep]
            frames = result["frames"][keep] if keep else None
            keys = result["key"][keep] if keep else None
            self._write_video_chunk(chunks, k, n_items, rows_k, frames, keys, bad, outside)
        return chunks


def _root_cause(exc: BaseException) -> str:
    """The worker's own exception text, without Ray's wrapping and remote traceback."""
    cause = getattr(exc, "cause", None) or exc.__cause__
    while cause is not None and getattr(cause, "cause", None) is not None:
        cause = cause.cause
    text = str(cause if cause is not None else exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
