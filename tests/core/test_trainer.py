"""In-process tests of the shared Trainer: schedule, AdamW groups, accumulation, EMA, eval, metrics, checkpoints."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import safetensors.torch
import torch

from maskzoo.core.errors import UserError
from maskzoo.core.training import (
    RandomCropLoader,
    ResumableLoader,
    TrainConfig,
    Trainer,
    find_latest,
    param_groups,
    read_metrics,
    warmup_cosine,
)
from maskzoo.core.training import checkpointing as ckpt

sys.path.insert(0, str(Path(__file__).parent))
from _trainer_toy import SEQ, Toy, make_loss, tokens  # noqa: E402


def _cfg(**kw) -> TrainConfig:
    base = dict(
        max_steps=10,
        lr=1e-2,
        min_lr=1e-3,
        warmup_steps=2,
        log_every=5,
        save_every=5,
        progress=False,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def _trainer(run_dir, cfg, *, data=None, resume=False, dropout=0.1, eval_fn=None) -> Trainer:
    torch.manual_seed(0)
    model = Toy(dropout)
    data = data if data is not None else RandomCropLoader(tokens(), SEQ, 8, seed=7)
    return Trainer(model, make_loss(), data, cfg, eval_fn, run_dir=run_dir, resume=resume)


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _assert_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_warmup_cosine_shape():
    kw = dict(lr=1.0, min_lr=0.1, warmup_steps=4, total_steps=14)
    assert warmup_cosine(0, **kw) == pytest.approx(0.25)
    assert warmup_cosine(3, **kw) == pytest.approx(1.0)
    assert warmup_cosine(4, **kw) == pytest.approx(1.0)
    assert warmup_cosine(9, **kw) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert warmup_cosine(14, **kw) == pytest.approx(0.1)
    assert warmup_cosine(100, **kw) == pytest.approx(0.1)
    lrs = [warmup_cosine(s, **kw) for s in range(4, 15)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_weight_decay_skips_biases_and_optionally_embeddings():
    model = Toy()
    groups = param_groups(model, 0.1, decay_embeddings=False)
    decayed = {id(p) for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == 0.1 and decayed == {id(model.out.weight)}
    assert {id(p) for p in groups[1]["params"]} == {id(model.emb.weight), id(model.out.bias)}
    groups = param_groups(model, 0.1, decay_embeddings=True)
    assert {id(p) for p in groups[0]["params"]} == {id(model.out.weight), id(model.emb.weight)}


def test_fit_trains_logs_and_checkpoints(tmp_path):
    t = _trainer(tmp_path, _cfg(max_steps=30, keep_last=2, save_every=10))
    first_loss = make_loss()(t.model, next(RandomCropLoader(tokens(), SEQ, 64, seed=1)))[0].item()
    final = t.fit()
    assert final["step"] == 30 and final["loss"] < first_loss
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30]
    for r in rows:
        assert {"loss", "lr", "grad_norm", "tokens_per_s", "acc"} <= r.keys() and r["tokens_per_s"] > 0
    assert rows[-1]["lr"] == pytest.approx(
        warmup_cosine(29, lr=1e-2, min_lr=1e-3, warmup_steps=2, total_steps=30)
    )
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["latest", "step_0000020", "step_0000030"]  # keep_last=2
    assert find_latest(tmp_path / "checkpoints").name == "step_0000030"
    assert (tmp_path / "config.yaml").read_text() == (
        tmp_path / "checkpoints/step_0000030/config.yaml"
    ).read_text()
    saved = safetensors.torch.load_file(str(tmp_path / "checkpoints/step_0000030/model.safetensors"))
    _assert_equal(saved, _params(t.model))


def test_grad_accumulation_matches_big_batch(tmp_path):
    windows = [tokens()[i : i + SEQ] for i in range(0, 256, SEQ)]
    runs = {}
    for accum, bs in [(1, 8), (2, 4)]:
        data = ResumableLoader(windows, bs, lambda xs: {"input_ids": torch.stack(xs)}, shuffle=False)
        t = _trainer(tmp_path / f"a{accum}", _cfg(grad_accum_steps=accum), data=data, dropout=0.0)
        t.fit()
        runs[accum] = _params(t.model)
    for k in runs[1]:
        torch.testing.assert_close(runs[1][k], runs[2][k], rtol=1e-5, atol=1e-6)


def test_grad_clipping_bounds_the_update(tmp_path):
    seen = []
    t = _trainer(tmp_path, _cfg(max_steps=1, grad_clip=1e-3, log_every=1))
    orig_step = t.optimizer.step

    def step(*a, **kw):
        seen.append(torch.sqrt(sum((p.grad**2).sum() for p in t.model.parameters())).item())
        return orig_step(*a, **kw)

    t.optimizer.step = step
    t.fit()
    assert seen[0] == pytest.approx(1e-3, rel=1e-4)
    assert read_metrics(tmp_path / "metrics.jsonl")[0]["grad_norm"] > 1e-2  # logged norm is the pre-clip norm


def test_ema_is_used_for_eval_and_restored(tmp_path):
    seen = {}

    def eval_fn(model):
        seen["weight"] = model.out.weight.detach().clone()
        seen["training"] = model.training
        seen["grad"] = torch.is_grad_enabled()
        return {"score": 1.5}

    t = _trainer(tmp_path, _cfg(ema_decay=0.8, eval_every=4), eval_fn=eval_fn)
    final = t.fit()
    assert torch.equal(seen["weight"], t.ema.shadow["out.weight"])
    assert not torch.equal(t.model.out.weight, t.ema.shadow["out.weight"])
    assert seen["training"] is False and seen["grad"] is False and t.model.training
    assert final["eval/score"] == 1.5
    evals = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if "eval/score" in r]
    assert evals == [0, 4, 8, 10]  # step 0: eval_at_start
    ema_file = tmp_path / "checkpoints/step_0000010/ema.safetensors"
    torch.testing.assert_close(
        safetensors.torch.load_file(str(ema_file))["out.weight"], t.ema.shadow["out.weight"]
    )


def test_eval_does_not_disturb_training_rng(tmp_path):
    def eval_fn(model):
        return {"r": torch.rand(()).item()}  # consumes global RNG

    a = _trainer(tmp_path / "a", _cfg(eval_every=3), eval_fn=eval_fn)
    a.fit()
    b = _trainer(tmp_path / "b", _cfg())
    b.fit()
    _assert_equal(_params(a.model), _params(b.model))  # dropout draws identical with and without evals
    r = [x["eval/r"] for x in read_metrics(tmp_path / "a/metrics.jsonl") if "eval/r" in x]
    assert len(set(r)) == 1  # each evaluation sees the same fixed-seed randomness


def test_in_process_resume_is_exact(tmp_path):
    full = _trainer(tmp_path / "full", _cfg(ema_decay=0.9))
    full.fit()
    part = _trainer(tmp_path / "part", _cfg(ema_decay=0.9, max_steps=10))
    part.config.max_steps = 5  # stop early: simulate the end of a shorter job at a checkpoint
    part.fit()
    resumed = _trainer(tmp_path / "part", _cfg(ema_decay=0.9), resume=True)
    assert resumed.step == 5 and resumed.resumed_from.name == "step_0000005"
    resumed.fit()
    _assert_equal(_params(full.model), _params(resumed.model))
    _assert_equal(full.ema.state_dict(), resumed.ema.state_dict())
    losses = lambda p: [r["loss"] for r in read_metrics(p / "metrics.jsonl")]  # noqa: E731
    assert losses(tmp_path / "full") == losses(tmp_path / "part")


def test_failed_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    real = ckpt._write_state
    calls = []

    def flaky(path, state):
        calls.append(state["step"])
        if state["step"] == 10:
            path.write_bytes(b"half a file")  # a partial write, then the process "dies"
            raise KeyboardInterrupt("killed while writing")
        real(path, state)

    monkeypatch.setattr(ckpt, "_write_state", flaky)
    t = _trainer(tmp_path / "run", _cfg(max_steps=15))
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    root = tmp_path / "run/checkpoints"
    assert calls == [5, 10]
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_0000005"]  # temp dir cleaned up
    assert find_latest(root).name == "step_0000005"
    monkeypatch.setattr(ckpt, "_write_state", real)
    resumed = _trainer(tmp_path / "run", _cfg(max_steps=15), resume=True)
    assert resumed.step == 5
    resumed.fit()
    full = _trainer(tmp_path / "full", _cfg(max_steps=15))
    full.fit()
    _assert_equal(_params(full.model), _params(resumed.model))


def test_stale_pointer_and_leftovers(tmp_path):
    t = _trainer(tmp_path, _cfg(max_steps=10))
    t.fit()
    root = tmp_path / "checkpoints"
    (root / "latest").write_text("step_0000099\n")  # points at nothing
    (root / ".step_0000015.abc.tmp").mkdir()  # leftover of a SIGKILLed write
    (root / "step_0000020").mkdir()  # incomplete directory: not a checkpoint
    assert find_latest(root).name == "step_0000010"
    ckpt.prune(root, keep_last=3)
    assert not (root / ".step_0000015.abc.tmp").exists()
    with pytest.raises(UserError, match="not a complete training checkpoint"):
        ckpt.load_checkpoint(root / "step_0000020", Toy())


def test_corrupt_model_file_is_user_error(tmp_path):
    _trainer(tmp_path, _cfg(max_steps=5)).fit()
    f = tmp_path / "checkpoints/step_0000005/model.safetensors"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(UserError, match="cannot read weights"):
        ckpt.load_checkpoint(f.parent, Toy())


def test_user_errors(tmp_path):
    _trainer(tmp_path / "r", _cfg(max_steps=5)).fit()
    with pytest.raises(UserError, match="already holds checkpoints"):
        _trainer(tmp_path / "r", _cfg(max_steps=5))
    with pytest.raises(UserError, match="precision"):
        _trainer(tmp_path / "p", _cfg(precision="fp8"))
    with pytest.raises(UserError, match="gradient_checkpointing"):
        Trainer(
            torch.nn.Linear(2, 2), make_loss(), [], _cfg(gradient_checkpointing=True), run_dir=tmp_path / "g"
        )


def test_gradient_checkpointing_toggle(tmp_path):
    t = _trainer(tmp_path, _cfg(gradient_checkpointing=True))
    assert t.model.gradient_checkpointing is True


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 7, "loss": 1.0}\n')  # an earlier try killed early
    t = _trainer(tmp_path, _cfg(max_steps=3, log_every=1), resume=True)
    assert t.step == 0 and t.resumed_from is None
    assert t.fit()["step"] == 3
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3]


def test_resumable_loader_state_and_shards():
    data = list(range(10))
    a = ResumableLoader(data, 4, seed=3)
    [next(a) for _ in range(3)]
    state = a.state_dict()
    expect = [next(a) for _ in range(4)]
    b = ResumableLoader(data, 4, seed=3)
    b.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(expect, [next(b) for _ in range(4)]))
    # one epoch = a permutation of the data, different per epoch
    c = ResumableLoader(data, 5, seed=3)
    e0 = torch.cat([next(c), next(c)]).tolist()
    e1 = torch.cat([next(c), next(c)]).tolist()
    assert sorted(e0) == data == sorted(e1) and e0 != e1
    # two ranks' shards make up the single-process batch
    one = ResumableLoader(data, 4, seed=3, rank=0, world_size=1)
    r0 = ResumableLoader(data, 4, seed=3, rank=0, world_size=2)
    r1 = ResumableLoader(data, 4, seed=3, rank=1, world_size=2)
    for _ in range(5):
        assert torch.equal(next(one), torch.cat([next(r0), next(r1)]))
    with pytest.raises(UserError, match="divisible"):
        ResumableLoader(data, 3, rank=0, world_size=2)


def test_random_crop_loader_state_and_shards():
    toks = torch.arange(100)
    one = RandomCropLoader(toks, 6, 4, seed=1, rank=0, world_size=1)
    r0 = RandomCropLoader(toks, 6, 4, seed=1, rank=0, world_size=2)
    r1 = RandomCropLoader(toks, 6, 4, seed=1, rank=1, world_size=2)
    for _ in range(3):
        b = next(one)["input_ids"]
        assert b.shape == (4, 6) and torch.equal(b[:, 1:] - b[:, :-1], torch.ones(4, 5, dtype=torch.long))
        assert torch.equal(b, torch.cat([next(r0)["input_ids"], next(r1)["input_ids"]]))
    state = one.state_dict()
    nxt = next(one)["input_ids"]
    fresh = RandomCropLoader(toks, 6, 4, seed=1, rank=0, world_size=1)
    fresh.load_state_dict(state)
    assert torch.equal(next(fresh)["input_ids"], nxt)


def test_no_clipping_still_logs_the_norm(tmp_path):
    t = _trainer(tmp_path, _cfg(max_steps=2, grad_clip=0.0, log_every=1))
    t.fit()
    assert all(r["grad_norm"] > 0 for r in read_metrics(tmp_path / "metrics.jsonl"))


def test_device_and_precision_errors(tmp_path):
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        _trainer(tmp_path / "a", _cfg(precision="fp16"))
    with pytest.raises(UserError, match="train device"):
        _trainer(tmp_path / "b", _cfg(device="tpu7"))
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            _trainer(tmp_path / "c", _cfg(device="cuda"))


def test_bf16_autocast_on_cpu_trains(tmp_path):
    t = _trainer(tmp_path, _cfg(precision="bf16", max_steps=5))
    assert t.fit()["step"] == 5 and t.model.out.weight.dtype == torch.float32  # master weights stay fp32


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_mixed_precision_and_resume(tmp_path, precision):
    cfg = dict(device="cuda", precision=precision, ema_decay=0.9)
    full = _trainer(tmp_path / "full", _cfg(**cfg))
    assert (full.scaler is not None) == (precision == "fp16")
    full.fit()
    assert full.model.out.weight.is_cuda and torch.isfinite(full.model.out.weight).all()
    part = _trainer(tmp_path / "part", _cfg(**cfg))
    part.config.max_steps = 5
    part.fit()
    resumed = _trainer(tmp_path / "part", _cfg(**cfg), resume=True)
    resumed.fit()
    for k, v in _params(full.model).items():
        torch.testing.assert_close(_params(resumed.model)[k], v)


def test_optimizer_groups_with_lr_scale(tmp_path):
    torch.manual_seed(0)
    model = Toy()
    groups = [
        {"params": [model.emb.weight], "weight_decay": 0.0, "lr_scale": 0.1},
        {"params": [model.out.weight, model.out.bias], "weight_decay": 0.0},
    ]
    data = RandomCropLoader(tokens(), SEQ, 8, seed=7)
    t = Trainer(model, make_loss(), data, _cfg(max_steps=3), run_dir=tmp_path, optimizer_groups=groups)
    t.fit()
    lrs = [g["lr"] for g in t.optimizer.param_groups]
    expected = warmup_cosine(2, lr=1e-2, min_lr=1e-3, warmup_steps=2, total_steps=3)
    assert lrs[1] == pytest.approx(expected) and lrs[0] == pytest.approx(0.1 * expected)


class _Tied(Toy):
    def __init__(self):
        super().__init__()
        self.out = torch.nn.Linear(8, 16, bias=False)
        self.out.weight = self.emb.weight  # tied input/output embeddings


def test_tied_weights_checkpoint_and_mismatch(tmp_path):
    torch.manual_seed(0)
    data = RandomCropLoader(tokens(), SEQ, 8, seed=7)
    t = Trainer(_Tied(), make_loss(), data, _cfg(max_steps=5), run_dir=tmp_path)
    t.fit()
    fresh = _Tied()
    ckpt.load_checkpoint(tmp_path / "checkpoints/step_0000005", fresh)
    assert fresh.out.weight is fresh.emb.weight and torch.equal(fresh.emb.weight, t.model.emb.weight)
    with pytest.raises(UserError, match="do not fit the model"):
        ckpt.load_checkpoint(tmp_path / "checkpoints/step_0000005", torch.nn.Embedding(3, 8))
    wider = _Tied()
    wider.emb = torch.nn.Embedding(16, 9)  # same names, other shapes
    wider.out.weight = wider.emb.weight
    with pytest.raises(UserError, match="do not fit the model.*size mismatch"):
        ckpt.load_checkpoint(tmp_path / "checkpoints/step_0000005", wider)


def test_loss_metric_is_not_double_counted(tmp_path):
    def loss_fn(model, batch):
        loss, metrics = make_loss()(model, batch)
        return loss, {**metrics, "loss": loss.item(), "num_tokens": 1000}

    torch.manual_seed(0)
    data = RandomCropLoader(tokens(), SEQ, 8, seed=7)
    t = Trainer(Toy(), loss_fn, data, _cfg(max_steps=1, log_every=1), run_dir=tmp_path)
    before = make_loss()(t.model, RandomCropLoader(tokens(), SEQ, 8, seed=7).__next__())[0].item()
    t.fit()
    row = read_metrics(tmp_path / "metrics.jsonl")[0]
    assert row["loss"] == pytest.approx(before, rel=1e-6)
    assert "num_tokens" not in row


def test_rewriting_a_checkpoint_step_drops_its_stale_optional_files(tmp_path):
    model = Toy()
    ckpt.save_checkpoint(tmp_path, 3, model=model, trainer_state={"x": 1}, ema_state=model.state_dict())
    assert (tmp_path / "step_0000003" / "ema.safetensors").is_file()
    (tmp_path / "step_0000003" / "notes.txt").write_text("user file")
    ckpt.save_checkpoint(tmp_path, 3, model=model, trainer_state={"x": 2})  # EMA now off
    assert not (tmp_path / "step_0000003" / "ema.safetensors").exists()
    assert (tmp_path / "step_0000003" / "notes.txt").read_text() == "user file"
    assert ckpt.load_checkpoint(tmp_path / "step_0000003", Toy())["x"] == 2
