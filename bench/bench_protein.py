"""maskzoo-protein benchmarks: ESM-2 forward through the core's attention vs fair-esm, and generation throughput.

    python bench/bench_protein.py [--threads 1] [--repeats 5] [--lengths 64 128 256 512]

1. Forward: the same ESM-2 weights (t6_8M architecture: 6 layers, d = 320, 20 heads, random weights) run by
   fair-esm's ``ESM2.forward`` (its own rotary ``bmm + softmax`` attention) and by ``maskzoo.protein.ESM2``
   (``maskzoo.core.attention``: SDPA on CPU; xformers and SDPA on CUDA when a GPU is present). The two are timed in
   alternation (pairs), so load on a shared machine hits both alike; ``speedup`` = median of ``t_fair / t_maskzoo``.
   The max |logit difference| is recorded too.
2. Generation: ``maskzoo protein generate``'s sampler (random remasking, temperature 1) on the embedded default model,
   batch of 4, ``steps = length / 4``; residues per second and peak memory against length.
3. Training (CPU): residues/s of the DSM recipe's step (4 x 192 and 6 x 320 models, 2,064-token batches of crops
   of 256), packed rows vs padded token-budget batches, fp32 vs bf16 autocast (``--only-train`` runs this alone).

Peak memory on CPU: each measurement runs in a fresh process that returns freed heap to the OS
(``malloc_trim``), resets the kernel's peak-RSS mark (``/proc/self/clear_refs``) and reports ``VmHWM`` minus the RSS
before the call: the extra memory the call needed. For the forward pass it is measured for both implementations
(fair-esm materialises the [B, H, L, L] attention weights; SDPA does not). On CUDA,
``torch.cuda.max_memory_allocated``.

Writes ``bench/results/protein.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results" / "protein.json"


def _fair_esm_pair(num_layers=6, embed_dim=320, heads=20):
    """(fair-esm ESM2, maskzoo ESM2) with identical random weights."""
    import esm

    from maskzoo.protein.model import ESM2, ESM2Config

    torch.manual_seed(0)
    ref = esm.model.esm2.ESM2(
        num_layers, embed_dim, heads, esm.data.Alphabet.from_architecture("ESM-1b"), True
    )
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.02 * torch.randn_like(p))
    ours = ESM2(ESM2Config(num_layers, embed_dim, heads, token_dropout=True))
    state = {k: v for k, v in ref.state_dict().items() if not k.startswith("contact_head.")}
    ours.load_state_dict(state, strict=True)
    return ref.eval(), ours.eval()


@torch.no_grad()
def bench_forward(lengths, batch, repeats, device):
    from maskzoo.protein.alphabet import get_alphabet

    a = get_alphabet()
    ref, ours = _fair_esm_pair()
    ref, ours = ref.to(device), ours.to(device)
    backends = ["sdpa"] + (["xformers"] if device.type == "cuda" and _has_xformers() else [])
    rows = []
    for n in lengths:
        g = torch.Generator().manual_seed(n)
        ids = torch.randint(4, 24, (batch, n + 2), generator=g)
        ids[:, 0], ids[:, -1] = a.cls_id, a.eos_id
        ids = ids.to(device)
        for backend in backends:
            ours.set_attention_backend(backend)
            diff = float((ref(ids)["logits"] - ours(ids)).abs().max())
            t_ref, t_ours, ratios = [], [], []
            for _ in range(repeats):
                tr = _time(ref, ids, device)
                to = _time(ours, ids, device)
                t_ref.append(tr)
                t_ours.append(to)
                ratios.append(tr / to)
            row = {"length": n, "batch": batch, "backend": backend, "fair_esm_ms": 1e3 * statistics.median(t_ref),
                   "maskzoo_ms": 1e3 * statistics.median(t_ours), "speedup": statistics.median(ratios),
                   "max_abs_logit_diff": diff}  # fmt: skip
            if device.type == "cpu" and backend == "sdpa":
                mem = {impl: _in_child(_forward_memory_child, impl, n, batch, torch.get_num_threads()) / 2**20
                       for impl in ("fair-esm", "maskzoo")}  # fmt: skip
                row.update({"fair_esm_peak_mb": mem["fair-esm"], "maskzoo_peak_mb": mem["maskzoo"]})
            rows.append(row)
            print(
                f"forward L={n:4d} B={batch} {backend:8s} fair-esm {row['fair_esm_ms']:8.1f} ms  maskzoo "
                f"{row['maskzoo_ms']:8.1f} ms  speedup x{row['speedup']:.2f}  max|dlogit| {diff:.1e}  peak +MB "
                f"{row.get('fair_esm_peak_mb', float('nan')):.0f} vs {row.get('maskzoo_peak_mb', float('nan')):.0f}",
                flush=True,
            )
    return rows


def _has_xformers() -> bool:
    from maskzoo.core.attention import xformers_available

    return xformers_available()


def _time(fn, ids, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    fn(ids)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t


def _reset_peak_rss() -> int:
    """Return freed heap to the OS, reset the kernel's peak-RSS mark (VmHWM) and return the current RSS in bytes."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return _proc_status("VmRSS")


def _proc_status(key: str) -> int:
    """A ``/proc/self/status`` field in bytes (0 where unavailable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _forward_memory_child(impl: str, length: int, batch: int, threads: int, queue) -> None:
    """Peak RSS growth of one forward pass of fair-esm's or maskzoo's ESM2 (fresh process)."""
    torch.set_num_threads(threads)
    from maskzoo.protein.alphabet import get_alphabet

    ref, ours = _fair_esm_pair()
    model = ref if impl == "fair-esm" else ours
    ids = torch.randint(4, 24, (batch, length + 2))
    ids[:, 0], ids[:, -1] = get_alphabet().cls_id, get_alphabet().eos_id
    with torch.no_grad():
        model(ids[:, :8])  # warm-up (lazy initialisation)
        base = _reset_peak_rss()
        model(ids)
    queue.put(max(0, _proc_status("VmHWM") - base))


def _in_child(target, *args):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    out = q.get()
    p.join()
    return out


def _generation_child(length: int, num: int, threads: int, device: str, queue) -> None:
    torch.set_num_threads(threads)
    from maskzoo.protein.checkpoints import load_model
    from maskzoo.protein.generation import SamplerSettings, generate_proteins
    from maskzoo.protein.zoo import DEFAULT_MODEL

    dev = torch.device(device)
    model = load_model(DEFAULT_MODEL, device=dev)
    settings = SamplerSettings(steps=max(1, length // 4), remasking="random", temperature=1.0, batch_size=num)
    generate_proteins(model, [16] * num, SamplerSettings(steps=4, batch_size=num))  # warm-up
    base = _reset_peak_rss()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    seqs = generate_proteins(model, [length] * num, settings, torch.Generator(device=dev).manual_seed(0))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda"
            else max(0, _proc_status("VmHWM") - base))  # fmt: skip
    queue.put({"length": length, "num": num, "steps": settings.steps, "wall_s": wall,
               "residues_per_s": sum(map(len, seqs)) / wall, "peak_mem_mb": peak / 2**20, "device": device})  # fmt: skip


def bench_generation(lengths, num, threads, device):
    rows = []
    for n in lengths:
        row = _in_child(_generation_child, n, num, threads, device)
        rows.append(row)
        print(
            f"generate L={n:4d} x{num} steps={row['steps']:4d}  {row['residues_per_s']:8.1f} residues/s  "
            f"peak +{row['peak_mem_mb']:.1f} MB  ({row['wall_s']:.1f} s)",
            flush=True,
        )
    return rows


def _train_step_time(model, loss_fn, opt, batch, bf16: bool) -> float:
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss, _ = loss_fn(model, batch)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def bench_train_speed(sizes, max_tokens: int, crop_len: int, steps: int) -> list[dict]:
    """Training residues/s of the DSM recipe's step on CPU: packed rows vs token-budget padded batches, fp32 vs
    bf16 autocast. The four variants run in alternation, one step each per round (load on a shared machine hits
    all alike); the first round is warm-up. Residues = maskable tokens (padding and specials excluded)."""
    from maskzoo.core.losses import DiffusionLoss
    from maskzoo.protein.dataset import TokenBudgetLoader, load_examples
    from maskzoo.protein.model import ESM2, ESM2Config
    from maskzoo.protein.packing import PackedLoader
    from maskzoo.protein.training import resolve_data_path

    examples = load_examples(resolve_data_path("pkg:pdb_train.fasta"))
    rows = []
    for layers, dim, heads in sizes:
        torch.manual_seed(0)
        model = ESM2(ESM2Config(layers, dim, heads)).train()
        opt = torch.optim.AdamW(model.parameters(), 1e-4)
        loss_fn = DiffusionLoss(model.mask_id)
        variants = {(packed, bf16): {"s": 0.0, "res": 0, "pad": 0, "tok": 0} for packed in (True, False)
                    for bf16 in (False, True)}  # fmt: skip
        loaders = {p: (PackedLoader if p else TokenBudgetLoader)(examples, max_tokens, crop_len, seed=1)
                   for p in (True, False)}  # fmt: skip
        for r in range(steps + 1):
            batches = {p: next(loaders[p]) for p in (True, False)}
            for (packed, bf16), acc in variants.items():
                b = batches[packed]
                dt = _train_step_time(model, loss_fn, opt, b, bf16)
                if r > 0:
                    acc["s"] += dt
                    acc["res"] += int(b["maskable"].sum())
                    acc["tok"] += b["input_ids"].numel()
                    acc["pad"] += int((b["attention_mask"] == 0).sum())
        for (packed, bf16), acc in variants.items():
            row = {"layers": layers, "embed_dim": dim, "packed": packed, "precision": "bf16" if bf16 else "fp32",
                   "residues_per_s": acc["res"] / acc["s"], "padding_fraction": acc["pad"] / acc["tok"],
                   "steps": steps}  # fmt: skip
            rows.append(row)
            print(f"train {layers}x{dim} {'packed' if packed else 'padded'} {row['precision']}: "
                  f"{row['residues_per_s']:7.0f} residues/s, padding {row['padding_fraction']:.1%}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--gen-num", type=int, default=4)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--train-steps", type=int, default=6, help="rounds of the training-speed comparison")
    ap.add_argument("--only-train", action="store_true", help="run only the training-speed comparison")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "threads": args.threads,
            "device": str(device),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name() if device.type == "cuda" else None,
        },  # fmt: skip
    }
    if not args.only_train:
        result["forward"] = bench_forward(args.lengths, args.batch, args.repeats, device)
        result["generation"] = bench_generation(args.lengths, args.gen_num, args.threads, args.device)
    if device.type == "cpu":
        result["train_speed"] = bench_train_speed([(4, 192, 6), (6, 320, 20)], 2064, 256, args.train_steps)
    if args.only_train and RESULTS.is_file():
        result = {**json.loads(RESULTS.read_text()), "train_speed": result["train_speed"]}
    from maskzoo.core.fileio import atomic_open

    with atomic_open(RESULTS, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
