"""`v2p lm train` (the rerank fluency prior), `v2p rerank train` (the learned reranker: cross-encoder
and image term) and `v2p train` (a video tower)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from v2p.cli._app import StageProgress, print_json, app, friendly_errors, out, progress_bar
from v2p.errors import V2PError


# --------------------------------------------------------------------------- lm
lm_app = typer.Typer(no_args_is_help=True, help="The fluency prior used by --rerank/--splice.")
app.add_typer(lm_app, name="lm")


@lm_app.command("train")
@friendly_errors
def lm_train(
    index: Annotated[Path, typer.Argument(help="Index folder: the LM learns its prompts and is stored in INDEX/lm.")],
    epochs: Annotated[int, typer.Option(help="Passes over the prompts.")] = 3,
    vocab_size: Annotated[int, typer.Option(help="BPE vocabulary size.")] = 4096,
    max_prompts: Annotated[int, typer.Option(help="Train on at most this many prompts (a seeded sample).")] = 200_000,
    min_steps: Annotated[int, typer.Option(help="At least this many optimiser steps (small banks get more passes).")] = 300,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training record as JSON.")] = False,
):
    """Train a tiny GPT-2-style model (and its tokenizer) on the bank's own prompts, offline."""
    from v2p.rerank.lm import LMTrainConfig, train_bank_lm

    cfg = LMTrainConfig(epochs=epochs, vocab_size=vocab_size, max_prompts=max_prompts, min_steps=min_steps, seed=seed)
    with progress_bar() as bar:
        record = train_bank_lm(index, cfg, on_progress=StageProgress(bar))
    if as_json:
        print_json(record)
    else:
        out.print(f"language model for {index}: {record['parameters']:,} parameters on {record['prompts']} prompts, "
                  f"loss {record['first_loss']:.2f} -> {record['final_loss']:.2f} in {record['seconds']:.0f}s")


# --------------------------------------------------------------------------- rerank
rerank_app = typer.Typer(no_args_is_help=True,
                         help="The learned reranker used by --rerank (cross-encoder and image term).")
app.add_typer(rerank_app, name="rerank")


@rerank_app.command("train")
@friendly_errors
def rerank_train(
    index: Annotated[Path, typer.Argument(help="Index folder built with --videos: the reranker learns from its own "
                                               "videos and is stored in INDEX/reranker.")],
    k: Annotated[int, typer.Option(min=2, help="Retrieved candidates per training clip (the near misses).")] = 16,
    max_clips: Annotated[int, typer.Option(min=1, help="Train on at most this many bank videos (a seeded sample).")] = 20_000,
    epochs: Annotated[int, typer.Option(min=1, help="Maximum epochs (the best on held-out prompts is kept).")] = 12,
    patience: Annotated[int, typer.Option(min=1, help="Epochs without improvement before stopping.")] = 3,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-3,
    reversed_negatives: Annotated[bool, typer.Option(help="Add each prompt with its motion reversed as a negative "
                                                          "that carries the true prompt's retrieval features.")] = True,
    seed: Annotated[int, typer.Option(help="Seed for the sample, the split and the init.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training record as JSON.")] = False,
):
    """Train a cross-encoder that reads a clip's frames and each candidate prompt together, and, when the
    frames carry a picture embedding, the image term (a map from pictures to the prompt space)."""
    from v2p.rerank.cross import CrossTrainConfig, train_cross_reranker

    cfg = CrossTrainConfig(k=k, max_clips=max_clips, epochs=epochs, patience=patience, lr=lr,
                           reversed_negatives=reversed_negatives, seed=seed)
    command = "v2p rerank train " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else None
    with progress_bar() as bar:
        result = train_cross_reranker(index, cfg, on_progress=StageProgress(bar), provenance={"command": command})
    rec = result.record
    if as_json:
        print_json(rec)
        return
    val = "no held-out lists"
    if rec.get("val_gain"):
        gain, lo, hi = rec["val_gain"]
        val = (f"held-out top-1 {rec['val_top1_retrieval']:.3f} (retrieval), best epoch {gain:+.3f} "
               f"[{lo:+.3f}, {hi:+.3f}]")
    verdict = ("it did not clearly beat retrieval there, so it keeps retrieval's order" if rec["keeps_retrieval_order"]
               else f"epoch {rec['best_epoch']} kept")
    out.print(f"reranker for {index}: {rec['parameters']:,} parameters, {rec['train_lists']} training lists "
              f"({rec['missed']} clips had their prompt outside the top {k}), {val}: {verdict}; "
              f"{rec['epochs_run']} epochs in {rec['seconds']:.0f}s; --rerank now uses it")
    image = rec.get("image_map")
    if image is None:
        out.print("image term: none (the index's frames carry no picture embedding; build with an encoder spec "
                  "ending in +image, v2p-sight or CLIP to get one)")
    else:
        gain, lo, hi = image["gain"]
        out.print(f"image term: top-1 {image['top1_retrieval']:.3f} -> {image['top1_with_term']:.3f} on "
                  f"{image['lists']} out-of-fold lists, gain {gain:+.3f} [{lo:+.3f}, {hi:+.3f}]: "
                  + (f"weight {image['term_weight']:g}" if image["term_weight"] else "weight 0, keeps retrieval's order"))


# --------------------------------------------------------------------------- train
@app.command()
@friendly_errors
def train(
    source: Annotated[Path, typer.Argument(help="A shard (frames decoded, frame encoder trained) or an index folder "
                                                "built with --videos and a clip encoder (cached frame vectors).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Model folder to write (use as --encoder v2p:<folder>).")],
    text_encoder: Annotated[str, typer.Option(help="Frozen text space to train into.")] = "minilm",
    head: Annotated[str, typer.Option(help="Pooling head: mean or temporal.")] = "temporal",
    frame_encoder: Annotated[str, typer.Option(help="tiny-cnn (trained from scratch, shard source); a clip source "
                                                    "uses the index's own encoder.")] = "tiny-cnn",
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping on validation loss).")] = 40,
    batch_size: Annotated[int, typer.Option(help="Prompts per batch (InfoNCE negatives).")] = 128,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-3,
    patience: Annotated[int, typer.Option(help="Epochs without validation improvement before stopping.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the split, sampling and init.")] = 0,
    generators: Annotated[str | None, typer.Option(help="Train on these generators' videos only.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use only the first N unique prompts.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after N optimiser steps (smoke runs).")] = None,
    frames: Annotated[int, typer.Option(help="Frames per video.")] = 8,
    hard_negatives: Annotated[bool, typer.Option(help="Add each prompt's motion reversal ('left' <-> 'right', "
                                                      "'zoom in' <-> 'zoom out') and its clip played backwards as "
                                                      "hard negatives, so the head must learn the order of frames.")] = True,
    neighbour_group: Annotated[int, typer.Option(help="Fill batches with groups of N prompts that are near in the text "
                                                      "space, so each clip meets its near misses as negatives "
                                                      "(1 = random batches).")] = 1,
    video_pairs: Annotated[bool, typer.Option(help="Also train two clips of one prompt (e.g. two generators') to "
                                                   "match each other: what the video path compares.")] = False,
    word_swaps: Annotated[int, typer.Option(help="Add up to N hard negatives per prompt, each the prompt with one "
                                                 "word replaced by a word the corpus uses in its place ('red cube' -> "
                                                 "'red ball'), so each attribute is learnt on its own (0 = off).")] = 0,
    frame_max_pool: Annotated[bool, typer.Option(help="tiny-cnn frame vectors also carry each channel's maximum over "
                                                      "the frame: what is shown, wherever it stands.")] = False,
    skip_bad: Annotated[bool, typer.Option(help="Skip bad rows/videos instead of stopping.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing --out folder.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the training summary as JSON.")] = False,
):
    """Train a video tower into a frozen text space (symmetric InfoNCE, learnable temperature)."""
    from v2p._paths import refuse_existing

    refuse_existing(out_dir, overwrite)  # before minutes of decoding, not after
    from v2p.train import data as train_data
    from v2p.train.loop import TrainConfig, train_tower

    if head not in ("mean", "temporal"):
        raise V2PError(f"--head must be mean or temporal, not {head!r}")
    if not 1 <= neighbour_group <= batch_size:
        raise V2PError(f"--neighbour-group must be between 1 and --batch-size ({batch_size}), not {neighbour_group}")
    if word_swaps < 0:
        raise V2PError(f"--word-swaps must be 0 or more, not {word_swaps}")
    is_index = (source / "manifest.json").is_file()
    with progress_bar() as bar:
        stages = StageProgress(bar)
        if is_index:
            if frame_max_pool:
                raise V2PError("--frame-max-pool changes the tiny-cnn frame encoder; a cached-frame index keeps "
                               "its own encoder's frame vectors")
            data = train_data.from_index(source, text_encoder=text_encoder, word_swaps=word_swaps, on_progress=stages)
        else:
            if frame_encoder != "tiny-cnn":
                raise V2PError("a clip frame encoder trains on cached frame vectors: build an index with "
                               "'v2p index build SHARD --videos --encoder clip:...' and pass that index folder")
            from v2p.data.shard import open_shard

            data = train_data.from_shard(open_shard(source), text_encoder=text_encoder, num_frames=frames,
                                         generators=generators.split(",") if generators else None, limit=limit,
                                         skip_bad=skip_bad, word_swaps=word_swaps, on_progress=stages)
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, seed=seed,
                          max_steps=max_steps, hard_negatives=hard_negatives, neighbour_group=neighbour_group,
                          video_pairs=video_pairs)
        command = "v2p train " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else None
        result = train_tower(data, out_dir, head=head, text_encoder=text_encoder, cfg=cfg, on_progress=stages,
                             tower_overrides={"frame_max_pool": frame_max_pool},
                             provenance={"command": command, "seed": seed}, overwrite=overwrite)
    summary = {"out": str(out_dir), "encoder_spec": f"v2p:{out_dir}", "best_epoch": result.best_epoch,
               "epochs_run": len(result.history), "seconds": result.seconds, **result.best}
    if as_json:
        print_json(summary)
    else:
        out.print(f"trained {head} tower -> {out_dir} (best epoch {result.best_epoch} of {len(result.history)}, "
                  f"val R@1 {result.best.get('val_r1', float('nan')):.3f}"
                  + (f", reversal acc. {result.best['val_reversal_acc']:.3f}" if "val_reversal_acc" in result.best else "")
                  + (f", word-swap acc. {result.best['val_swap_acc']:.3f}" if "val_swap_acc" in result.best else "")
                  + f", {result.seconds:.0f}s); "
                  f"use it as --encoder v2p:{out_dir}")
