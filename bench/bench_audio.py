"""Audio: transcription quality (WER / CER with jiwer) and speed (real-time factor) against sampler steps at
batch 1 and 16, and the LM part against an autoregressive decoder of the same size.

    python bench/bench_audio.py [--checkpoint DIR] [--utterances 64] [--steps 1 2 4 8] [--threads 1]

Held-out data: clean composed digit utterances of the held-out speaker (lucas), the same as the model card's.
RTF = compute seconds / audio seconds (encoder + adapters + sampler; audio already in memory). The LM-part
comparison times only the language model producing the answer after the same audio prompt: the diffusion LM
with ``steps`` forwards over the whole sequence vs a causal transformer with the same configuration decoding
token by token, once re-reading the whole sequence per token and once with the core's KV cache (the prompt
prefilled once, then one position per forward); it has random weights, so only its speed is compared. Writes bench/results/audio.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from maskzoo.audio.checkpoint import load_audio_model
from maskzoo.audio.evaluate import evaluate_tasks, heldout_utterances, real_time_factor
from maskzoo.audio.tasks import TRANSCRIBE, prompt_ids
from maskzoo.core.fileio import atomic_open
from maskzoo.core.kv_cache import KVCache
from maskzoo.core.sampling import generate
from maskzoo.core.transformer import DiffusionTransformer

RESULTS = Path(__file__).parent / "results"


def lm_part(model, steps_list, batch_size: int, repeats: int = 5) -> list[dict]:
    """Seconds per answer batch: diffusion LM (``steps`` forwards) vs a causal LM of the same size."""
    tok, gen = model.tokenizer, model.config.gen_length
    audio = torch.randn(batch_size, model.num_audio_tokens, model.lm.config.d_model) * 0.02
    prompt = torch.tensor([prompt_ids(tok, TRANSCRIBE, model.num_audio_tokens)] * batch_size)
    ar = DiffusionTransformer(replace(model.lm.config, causal=True)).eval()
    rows = []
    with torch.no_grad():
        for steps in steps_list:
            fn = model.denoiser(audio)
            generate(fn, prompt, gen_length=gen, steps=steps, block_length=gen)
            t0 = time.perf_counter()
            for _ in range(repeats):
                generate(fn, prompt, gen_length=gen, steps=steps, block_length=gen)
            rows.append({"decoder": "diffusion", "steps": steps, "batch_size": batch_size,
                         "seconds": (time.perf_counter() - t0) / repeats})
        emb = model.embed(prompt, audio)  # [B, P, D]
        t0 = time.perf_counter()
        for _ in range(repeats):
            x = emb
            for _ in range(gen):  # greedy, one forward over the whole sequence per token
                nxt = ar(inputs_embeds=x)[:, -1].argmax(-1)  # [B]
                x = torch.cat([x, ar.embed_tokens(nxt)[:, None]], dim=1)
        rows.append({"decoder": "autoregressive (no cache)", "steps": gen, "batch_size": batch_size,
                     "seconds": (time.perf_counter() - t0) / repeats})
        t0 = time.perf_counter()
        for _ in range(repeats):
            cache = KVCache()
            nxt = ar(inputs_embeds=emb, kv_cache=cache, cache_position=0,
                     logits_slice=slice(-1, None))[:, -1].argmax(-1)  # [B] prefill, first token
            for i in range(1, gen):  # one new position per forward
                nxt = ar(input_ids=nxt[:, None], kv_cache=cache, cache_position=emb.shape[1] + i - 1)[:, -1].argmax(-1)
        rows.append({"decoder": "autoregressive (KV cache)", "steps": gen, "batch_size": batch_size,
                     "seconds": (time.perf_counter() - t0) / repeats})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--utterances", type=int, default=64)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1] / "apps" / "data" / "audio_fsdd"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import jiwer

    model = load_audio_model(args.checkpoint)
    utts = heldout_utterances(args.data_dir, "lucas", args.utterances, model.window_samples)
    quality = []
    for steps in args.steps:
        res = evaluate_tasks(model, utts, tasks=("transcribe",), settings={"steps": steps})["transcribe"]
        quality.append({"steps": steps, "wer": jiwer.wer(res.refs, res.hyps), "cer": jiwer.cer(res.refs, res.hyps),
                        "utterance_accuracy": res.accuracy})
        print(f"steps {steps}: WER {quality[-1]['wer']:.3f}  CER {quality[-1]['cer']:.3f}  "
              f"utterances right {res.accuracy:.3f}")
    speed = []
    for batch in (1, 16):
        for steps in args.steps:
            rtf = real_time_factor(model, utts[:16], steps, batch)
            speed.append({"batch_size": batch, "steps": steps, "rtf": rtf})
            print(f"batch {batch:2d} steps {steps}: RTF {rtf:.4f}")
    lm = lm_part(model, args.steps, 16) + lm_part(model, args.steps, 1)
    for row in lm:
        print(f"LM part, {row['decoder']:26s} batch {row['batch_size']:2d} steps {row['steps']}: "
              f"{row['seconds'] * 1000:.1f} ms")
    by = {(r["decoder"], r["batch_size"], r["steps"]): r["seconds"] for r in lm}
    for b in (1, 16):
        for name in ("autoregressive (no cache)", "autoregressive (KV cache)"):
            ar = by[(name, b, model.config.gen_length)]
            for s in args.steps:
                print(f"batch {b:2d}: diffusion {s} steps / {name} {model.config.gen_length} tokens = "
                      f"{by[('diffusion', b, s)] / ar:.2f}")
    RESULTS.mkdir(exist_ok=True)
    out = {"machine": platform.processor() or platform.machine(), "threads": args.threads,
           "utterances": args.utterances, "quality": quality, "speed": speed, "lm_part": lm}
    with atomic_open(RESULTS / "audio.json", "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {RESULTS / 'audio.json'}")


if __name__ == "__main__":
    main()
