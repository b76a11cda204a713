"""Trainer reliability: bad settings fail at the start, resumes are exact and keep their provenance, broken
training never reaches a checkpoint."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.core.losses import DiffusionLoss
from maskzoo.core.training import RandomCropLoader, TrainConfig, Trainer, find_latest
from maskzoo.core.training.provenance import changed_keys

sys.path.insert(0, str(Path(__file__).parent))
from _trainer_toy import SEQ, VOCAB, Toy, make_loss, tokens  # noqa: E402

MASK = VOCAB - 1


class KwToy(Toy):
    """The toy model called as the core losses call models: ``model(input_ids=...)``."""

    def forward(self, ids: torch.Tensor | None = None, input_ids: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(input_ids if input_ids is not None else ids)


@dataclass
class Model:
    d_model: int = 8
    n_layers: int = 2


@dataclass
class Eval:
    windows: int = 4


@dataclass
class Recipe:
    objective: str = "diffusion"
    model: Model = field(default_factory=Model)
    eval: Eval = field(default_factory=Eval)
    train: TrainConfig = field(default_factory=lambda: _cfg())


def _cfg(**kw) -> TrainConfig:
    base = dict(max_steps=6, lr=1e-2, min_lr=1e-3, warmup_steps=2, log_every=3, save_every=3, progress=False,
                device="cpu")
    return TrainConfig(**{**base, **kw})


def _trainer(run_dir, cfg=None, *, loss=None, data=None, recipe=None, resume=False, eval_fn=None, **kw) -> Trainer:
    torch.manual_seed(0)
    cfg = cfg if cfg is not None else (recipe.train if recipe is not None else _cfg())
    data = data if data is not None else RandomCropLoader(tokens(), SEQ, 8, seed=7)
    return Trainer(KwToy(0.1), loss if loss is not None else make_loss(), data, cfg, eval_fn, run_dir=run_dir,
                   resume=resume, run_config=recipe, **kw)


def _own_rng_loss() -> DiffusionLoss:
    """The core diffusion loss drawing times and masks from ITS OWN generator (not the global RNG)."""
    return DiffusionLoss(MASK, generator=torch.Generator().manual_seed(11))


def _params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------------------------- exact resume


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing after it runs in the dying trainer."""


def test_resume_restores_the_loss_generator_bitwise(tmp_path):
    cfg = _cfg(max_steps=8, save_every=4)
    full = _trainer(tmp_path / "full", cfg, loss=_own_rng_loss())
    full.fit()
    a = _params(full.model)

    def run_killed(run_dir):
        loss = _own_rng_loss()
        count = [0]

        def dying(model, batch):  # killed in step 6, after the step-4 checkpoint
            count[0] += 1
            if count[0] == 6:
                raise _Killed
            return loss(model, batch)

        dying.generator = loss.generator  # the loss's own generator, as DiffusionLoss holds it
        with pytest.raises(_Killed):
            _trainer(run_dir, cfg, loss=dying).fit()

    run_killed(tmp_path / "split")
    state = torch.load(tmp_path / "split/checkpoints/step_0000004/trainer_state.pt", weights_only=True)
    assert list(state["loss_rng"][0]) == ["generator"]
    resumed = _trainer(tmp_path / "split", cfg, loss=_own_rng_loss(), resume=True)  # a new process: fresh loss
    assert resumed.step == 4
    resumed.fit()
    b = _params(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)

    # the same kill, but the checkpoint lacks the generator state: the resumed run draws other masks
    run_killed(tmp_path / "stale")
    path = tmp_path / "stale/checkpoints/step_0000004/trainer_state.pt"
    s = torch.load(path, weights_only=True)
    s["loss_rng"] = [{}]
    torch.save(s, path)
    again = _trainer(tmp_path / "stale", cfg, loss=_own_rng_loss(), resume=True)
    again.fit()
    assert any(not torch.equal(a[k], v) for k, v in again.model.state_dict().items())


# --------------------------------------------------------------------------------------------- provenance


@pytest.mark.parametrize(
    "change, match",
    [
        ({"objective": "autoregressive"}, r"objective \('diffusion' -> 'autoregressive'\)"),
        ({"model": Model(n_layers=3)}, r"model\.n_layers \(2 -> 3\)"),
        ({"train": _cfg(max_steps=9, lr=5e-2)}, r"train\.lr \(0\.01 -> 0\.05\)"),
    ],
)
def test_resume_with_a_changed_recipe_names_the_keys(tmp_path, change, match):
    _trainer(tmp_path, recipe=Recipe()).fit()
    changed = Recipe(**change)
    with pytest.raises(UserError, match=match) as e:
        _trainer(tmp_path, recipe=changed, resume=True)
    assert "max_steps" not in str(e.value)  # allowed keys are not listed


def test_resume_allows_run_length_intervals_and_eval_settings(tmp_path):
    _trainer(tmp_path, recipe=Recipe()).fit()
    longer = Recipe(eval=Eval(windows=8), train=_cfg(max_steps=9, log_every=1, save_every=9, progress=True))
    t = _trainer(tmp_path, recipe=longer, resume=True)
    assert t.step == 6
    t.fit()
    assert find_latest(tmp_path / "checkpoints").name == "step_0000009"


def test_resume_allow_list_can_be_extended_by_the_recipe(tmp_path):
    _trainer(tmp_path, recipe=Recipe()).fit()
    recipe = Recipe(objective="autoregressive", train=_cfg(max_steps=7, resume_allow_changes=["objective"]))
    assert _trainer(tmp_path, recipe=recipe, resume=True).step == 6


def test_changed_keys_ignores_keys_on_one_side_only():
    old = {"a": 1, "m": {"x": 1, "y": 2}, "gone": 3}
    new = {"a": 1, "m": {"x": 5, "y": 2}, "new": 4, "train": {"max_steps": 9}}
    assert changed_keys(old, new) == ["m.x"]
    assert changed_keys(old, new, ["m.*"]) == [] and changed_keys(old, new, ["x"]) == []


# --------------------------------------------------------------------------------------------- early failures


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"lr": math.nan}, "lr must be a finite number"),
        ({"lr": math.inf}, "lr must be a finite number"),
        ({"max_steps": 0}, "max_steps must be >= 1"),
        ({"grad_accum_steps": 0}, "grad_accum_steps must be >= 1"),
        ({"adam_eps": 0.0}, "adam_eps must be > 0"),
    ],
)
def test_invalid_train_settings_fail_before_anything_runs(tmp_path, kw, match):
    with pytest.raises(UserError, match=match):
        _trainer(tmp_path / "run", _cfg(**kw))
    assert not (tmp_path / "run").exists()


def test_batch_size_zero_is_refused(tmp_path):
    with pytest.raises(UserError, match="batch_size must be a positive integer"):
        RandomCropLoader(tokens(), SEQ, 0)
    with pytest.raises(UserError, match="fewer than seq_len"):
        RandomCropLoader(tokens()[:3], SEQ, 2)


def test_an_empty_batch_stops_before_any_update(tmp_path):
    class Empty:
        def __iter__(self):
            while True:
                yield {"input_ids": torch.zeros(0, SEQ, dtype=torch.long)}

    t = _trainer(tmp_path, data=Empty())
    before = _params(t.model)
    with pytest.raises(UserError, match="empty batch at step 1"):
        t.fit()
    assert all(torch.equal(before[k], v) for k, v in t.model.state_dict().items())
    assert find_latest(tmp_path / "checkpoints") is None


def test_a_nan_loss_never_reaches_a_checkpoint(tmp_path):
    def nan_loss(model, batch):
        out = model(batch["input_ids"])  # [B, L, V]
        return out.sum() * float("nan"), {}

    with pytest.raises(UserError, match="training loss is nan at step 3"):
        _trainer(tmp_path, loss=nan_loss).fit()
    assert find_latest(tmp_path / "checkpoints") is None


def test_run_and_export_dirs_that_are_files_fail_at_start(tmp_path):
    (tmp_path / "file").write_text("keep")
    with pytest.raises(UserError, match="run_dir .*exists and is not a directory"):
        _trainer(tmp_path / "file")
    with pytest.raises(UserError, match="export directory .*not a directory"):
        _trainer(tmp_path / "run", export_dir=tmp_path / "file" / "model")
    assert (tmp_path / "file").read_text() == "keep"


def test_a_broken_eval_setting_fails_before_the_first_update(tmp_path):
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        return make_loss()(model, batch)

    def eval_fn(model):
        raise UserError("eval.windows=0: nothing to evaluate")

    with pytest.raises(UserError, match="eval.windows=0"):
        _trainer(tmp_path, loss=loss_fn, eval_fn=eval_fn).fit()
    assert calls == []


def test_a_directory_where_the_metrics_log_goes_fails_at_start(tmp_path):
    (tmp_path / "metrics.jsonl").mkdir()
    with pytest.raises(UserError, match="metrics.jsonl: exists and is not a regular file"):
        _trainer(tmp_path)
