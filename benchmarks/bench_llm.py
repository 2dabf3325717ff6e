"""Benchmark of aalearn.llm on the offline default model (SmolLM2-135M-Instruct, CPU).

Two questions, measured in one run on the same questions:

1. **What each score costs on top of the sampling.** Per question the model is run once
   for the greedy answer alone (all that MSP, perplexity and mean token entropy need) and
   once for the greedy answer plus ``--samples`` samples (one ``generate`` call, one
   prefill: what the sampling-based scores need). Then every score is computed on the
   generations with a *fresh* entailment backend (no cached judgements), and its time is
   reported in milliseconds and as a percentage of the sampling time. Goal: semantic
   entropy (clustering + entropy) adds at most 20 % to the sampling (lm-polygraph's runtime
   table, arXiv:2505.20045 Table 3: +450 % over plain likelihood with an NLI model on a GPU).
2. **Throughput of the HF backend versus a bare ``model.generate`` loop**: the same
   questions, greedy answer plus ``--samples`` samples each, ``max_new_tokens`` equal and no
   stop at newlines; the bare loop calls ``generate`` twice per question (greedy, then
   ``num_return_sequences`` samples) without returning logits. Generated tokens per second
   (excluding padding) and wall/CPU time per question are compared.

Usage::

    .venv/bin/python benchmarks/bench_llm.py --questions 4 --samples 5 --json bench_llm.json

Wall-clock times depend on other load on the machine; CPU (process) times are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from typing import Any

import numpy as np
import torch

from aalearn.llm import ALL_METHODS, SamplingConfig, compute_scores, load_backend, load_dataset
from aalearn.llm.backends import GenerationSet
from aalearn.llm.scores import format_question
from aalearn.llm.semantic import load_entailment

_ENTAILMENT_METHODS = ("semantic_entropy", "discrete_semantic_entropy", "num_semantic_sets", "eigv", "degmat")


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> tuple[float, float]:
    return time.perf_counter() - t[0], time.process_time() - t[1]


def score_costs(
    backend: Any, prompts: list[tuple[str, str]], cfg: SamplingConfig, entailment: str
) -> dict[str, Any]:
    """Per-score compute time on top of the generations, averaged over the questions."""
    rows: dict[str, list[float]] = {m: [] for m in ALL_METHODS}
    rows["semantic_entropy (incl. clustering)"] = []
    greedy_t, joint_t, greedy_cpu, joint_cpu = [], [], [], []
    for question, prompt in prompts:
        t = _clock()
        backend.generate(prompt, n=1, temperature=0.0, max_new_tokens=cfg.max_new_tokens)
        w, c = _since(t)
        greedy_t.append(w)
        greedy_cpu.append(c)
        t = _clock()
        gset: GenerationSet = backend.answer_and_sample(prompt, cfg)
        w, c = _since(t)
        joint_t.append(w)
        joint_cpu.append(c)
        for m in ALL_METHODS:
            ent = load_entailment(entailment) if m in _ENTAILMENT_METHODS else None
            t = _clock()
            compute_scores(gset, question=question, methods=[m], entailment=ent)
            rows[m].append(_since(t)[0])
        ent = load_entailment(entailment)
        t = _clock()
        compute_scores(gset, question=question, methods=["semantic_entropy"], entailment=ent)
        rows["semantic_entropy (incl. clustering)"].append(_since(t)[0])
    sampling = float(np.mean(joint_t))
    return {
        "entailment": entailment,
        "greedy_only_s": float(np.mean(greedy_t)),
        "greedy_only_cpu_s": float(np.mean(greedy_cpu)),
        "greedy_plus_samples_s": sampling,
        "greedy_plus_samples_cpu_s": float(np.mean(joint_cpu)),
        "sampling_vs_greedy_only": sampling / float(np.mean(greedy_t)),
        "scores_ms": {m: 1e3 * float(np.mean(v)) for m, v in rows.items() if v},
        "scores_percent_of_sampling": {m: 100 * float(np.mean(v)) / sampling for m, v in rows.items() if v},
    }


def throughput(backend: Any, prompts: list[tuple[str, str]], cfg: SamplingConfig) -> dict[str, Any]:
    """Generated tokens per second: the backend's joint call versus a bare generate loop."""
    model, tok = backend.model, backend.tokenizer
    pad = backend._pad_id
    stop_ids = torch.tensor(sorted(backend._stop_ids))

    def n_tokens(seqs: torch.Tensor) -> int:
        total = 0
        for row in seqs:
            hits = (row[:, None] == stop_ids[None, :]).any(dim=1).nonzero()
            total += int(hits[0, 0]) if len(hits) else int(row.shape[0])
        return total

    no_stop = SamplingConfig(**{**cfg.__dict__, "stop_at_newline": False})
    t = _clock()
    ours = 0
    for _, prompt in prompts:
        gset = backend.answer_and_sample(prompt, no_stop)
        ours += gset.greedy.n_tokens + sum(s.n_tokens for s in gset.samples)
    ours_w, ours_c = _since(t)
    t = _clock()
    bare = 0
    with torch.inference_mode():
        for k, (_, prompt) in enumerate(prompts):
            ids = backend.encode_prompt(prompt)
            mask = torch.ones_like(ids)
            g = model.generate(
                ids,
                attention_mask=mask,
                do_sample=False,
                max_new_tokens=cfg.max_new_tokens,
                pad_token_id=pad,
                temperature=None,
                top_p=None,
                top_k=None,
            )
            torch.manual_seed(cfg.seed + k)
            s = model.generate(
                ids,
                attention_mask=mask,
                do_sample=True,
                num_return_sequences=cfg.n_samples,
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                top_k=cfg.top_k,
                pad_token_id=pad,
            )
            bare += n_tokens(g[:, ids.shape[1] :]) + n_tokens(s[:, ids.shape[1] :])
    bare_w, bare_c = _since(t)
    del tok
    return {
        "backend_tokens": ours,
        "backend_s": ours_w,
        "backend_cpu_s": ours_c,
        "backend_tokens_per_s": ours / ours_w,
        "bare_tokens": bare,
        "bare_s": bare_w,
        "bare_cpu_s": bare_c,
        "bare_tokens_per_s": bare / bare_w,
        "speedup_tokens_per_s": (ours / ours_w) / (bare / bare_w),
        "speedup_tokens_per_cpu_s": (ours / ours_c) / (bare / bare_c),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--entailment", default="overlap,embedding", help="comma-separated entailment backends"
    )
    parser.add_argument("--json", default=None, help="write the results to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average before: {os.getloadavg()}")
    t = _clock()
    backend = load_backend("default")
    load_s = _since(t)[0]
    items = load_dataset("physics-qa", limit=args.questions)
    prompts = [(i.question, format_question(i.question)) for i in items]
    cfg = SamplingConfig(n_samples=args.samples, max_new_tokens=args.max_new_tokens, seed=0)
    backend.answer_and_sample(prompts[0][1], SamplingConfig(n_samples=1, max_new_tokens=2))  # warm-up
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {args.threads}",
        "model": backend.name,
        "load_s": load_s,
        "questions": [q for q, _ in prompts],
        "n_samples": args.samples,
        "max_new_tokens": args.max_new_tokens,
        "costs": [score_costs(backend, prompts, cfg, e.strip()) for e in args.entailment.split(",")],
        "throughput": throughput(backend, prompts, cfg),
        "load_average_after": os.getloadavg(),
    }
    for c in results["costs"]:
        print(f"\n== scores on top of sampling, entailment {c['entailment']} ==")
        print(f"greedy only {c['greedy_only_s']:.2f} s (CPU {c['greedy_only_cpu_s']:.2f} s)")
        print(
            f"greedy + {args.samples} samples {c['greedy_plus_samples_s']:.2f} s "
            f"(CPU {c['greedy_plus_samples_cpu_s']:.2f} s), x{c['sampling_vs_greedy_only']:.2f}"
        )
        for m, ms in c["scores_ms"].items():
            print(f"  {m:38s} {ms:9.2f} ms  {c['scores_percent_of_sampling'][m]:7.3f} % of sampling")
    tp = results["throughput"]
    print("\n== throughput: HF backend vs bare generate loop (no newline stop) ==")
    for who in ("backend", "bare"):
        print(
            f"{who:8s}{tp[who + '_tokens']} tokens in {tp[who + '_s']:.2f} s "
            f"({tp[who + '_tokens_per_s']:.1f} tok/s, CPU {tp[who + '_cpu_s']:.2f} s)"
        )
    print(
        f"speed-up (tokens/s): {tp['speedup_tokens_per_s']:.2f}x wall, "
        f"{tp['speedup_tokens_per_cpu_s']:.2f}x CPU"
    )
    print(f"load average after: {results['load_average_after']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
