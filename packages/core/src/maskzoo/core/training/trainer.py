"""The one Trainer every maskzoo package uses.

``Trainer(model, loss_fn, train_data, config, eval_fn, run_dir=...).fit()`` runs ``config.max_steps`` optimizer
updates. One update::

    lr <- warmup_cosine(step)                              (optim.py)
    for each of grad_accum_steps micro-batches:            (DDP gradient sync only on the last one)
        loss, metrics = loss_fn(model, batch)              under autocast (bf16/fp16) on CUDA
        backward(loss / grad_accum_steps)                  (GradScaler for fp16)
    grad_norm <- clip_grad_norm_(params, grad_clip)
    AdamW step; EMA update                                 (optim.py, ema.py)

and every ``log_every`` / ``eval_every`` / ``save_every`` updates it logs a metrics.jsonl row, runs ``eval_fn``
(with the EMA weights when EMA is on, under a forked RNG seeded with ``config.seed`` so evaluation never disturbs
training randomness) and writes an atomic checkpoint (checkpointing.py). With ``resume=True`` it continues from
the newest checkpoint in ``run_dir``; the continued run is bit-identical to an uninterrupted one on CPU (the
state of every ``torch.Generator`` the loss owns is checkpointed too). A resume whose recipe changed the model,
objective or data is refused (provenance.py).

Everything that could only fail late is checked when the Trainer is built: the config values, the run and
export directories (writable, not a file), and, with ``eval_at_start``, the evaluation itself (run once
before the first update). An empty batch or a non-finite logged loss stops the run with a UserError before a
checkpoint or export of broken weights is written.

Contracts:

- ``loss_fn(model, batch) -> (loss: scalar tensor, metrics: dict[str, float | tensor])``. ``model`` is the
  training wrapper (``DistributedDataParallel`` under torchrun): call it, and reach other attributes through
  :func:`unwrap_model`. A ``"num_tokens"`` metric, if given, is used for tokens/s instead of the batch size;
  a ``"loss"`` metric is ignored (the returned loss tensor is what is logged).
- ``train_data``: an iterable whose iterator yields batches (tensors / dicts / lists of tensors, moved to the
  device here) and which has ``state_dict()``/``load_state_dict()`` (see data.py). Each rank yields its shard.
- ``eval_fn(model) -> dict[str, float]``: called with the plain (unwrapped) model in eval mode, under
  ``torch.no_grad()``, the training autocast and the same RNG seed, on EVERY rank under torchrun (so no rank
  waits on a collective while rank 0 evaluates, however long that takes); rank 0's results are logged. It must
  not use collectives itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from maskzoo.core.config import save_config
from maskzoo.core.errors import UserError
from maskzoo.core.fileio import check_output_dir
from maskzoo.core.training import checkpointing as ckpt
from maskzoo.core.training import ddp, provenance
from maskzoo.core.training.config import TrainConfig
from maskzoo.core.training.ema import EMA
from maskzoo.core.training.metrics import MetricsLogger, progress_bar
from maskzoo.core.training.optim import WarmupCosineSchedule, build_optimizer

LossFn = Callable[[nn.Module, Any], tuple[torch.Tensor, dict[str, Any]]]
EvalFn = Callable[[nn.Module], dict[str, float]]

_AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def unwrap_model(model: nn.Module) -> nn.Module:
    """The user's module inside a DDP (or torch.compile) wrapper."""
    while isinstance(model, DistributedDataParallel) or hasattr(model, "_orig_mod"):
        model = model.module if isinstance(model, DistributedDataParallel) else model._orig_mod
    return model


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = full fp32). ``auto``: bf16 on CUDA, fp32 on CPU."""
    if precision == "auto":
        if device.type != "cuda":
            return None
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp16" and device.type != "cuda":
        raise UserError("precision fp16 needs a CUDA device (gradient scaling); use bf16 or fp32 on CPU")
    return _AUTOCAST_DTYPES[precision]


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) dict/list/tuple batch to ``device``."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


def _main_tensor(batch: Any) -> torch.Tensor | None:
    """``input_ids`` of a dict batch, else the batch's first tensor (None: no tensor at the top level)."""
    if torch.is_tensor(batch):
        return batch
    if isinstance(batch, dict):
        if "input_ids" in batch and torch.is_tensor(batch["input_ids"]):
            return batch["input_ids"]
        batch = list(batch.values())
    if isinstance(batch, (list, tuple)):
        for v in batch:
            if torch.is_tensor(v):
                return v
    return None


def count_tokens(batch: Any) -> int:
    """Tokens in a batch for throughput: ``input_ids`` of a dict batch, else the first tensor's numel."""
    t = _main_tensor(batch)
    return 0 if t is None else t.numel()


class _Window:
    """Running sums between two log rows."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.updates, self.tokens = 0, 0
        self.sums: dict[str, Any] = {}
        self.t0 = time.perf_counter()
        self.excluded = 0.0  # seconds spent in eval/checkpointing, left out of tokens/s

    def train_seconds(self) -> float:
        return max(time.perf_counter() - self.t0 - self.excluded, 1e-9)

    def add(self, values: dict[str, Any], tokens: int) -> None:
        self.updates += 1
        self.tokens += tokens
        for k, v in values.items():
            v = v.detach().float() if torch.is_tensor(v) else float(v)
            self.sums[k] = self.sums.get(k, 0.0) + v

    def means(self) -> dict[str, float]:
        return {k: float(v) / max(1, self.updates) for k, v in self.sums.items()}


class Trainer:
    """Train ``model`` with ``loss_fn`` on ``train_data`` as ``config`` says, checkpointing into ``run_dir``."""

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        train_data: Any,
        config: TrainConfig,
        eval_fn: EvalFn | None = None,
        *,
        run_dir: str | os.PathLike,
        resume: bool | str | os.PathLike = False,
        run_config: Any = None,
        optimizer_groups: list[dict] | None = None,
        export_dir: str | os.PathLike | None = None,
        resume_may_change: tuple[str, ...] = (),
    ):
        """``resume``: True = continue from run_dir's newest checkpoint (fresh start if none), a path = that
        checkpoint. ``run_config``: the full resolved recipe config (saved instead of ``config`` when given).
        ``optimizer_groups``: AdamW param groups (default :func:`~maskzoo.core.training.optim.param_groups`);
        a group's ``"lr_scale"`` scales the scheduled learning rate for it. ``export_dir``: where the caller will
        write the final model (checked now: writable and not a file). ``resume_may_change``: recipe keys
        (patterns) a resume may change beyond :data:`~maskzoo.core.training.provenance.RESUMABLE`."""
        config.validate()
        check_output_dir(run_dir, "run_dir")
        if export_dir is not None:
            check_output_dir(export_dir, "export directory")
        self.resume_may_change = (*resume_may_change, *config.resume_allow_changes)
        self.config = config
        self.loss_fn, self.eval_fn, self.train_data = loss_fn, eval_fn, train_data
        self.run_dir = Path(run_dir)
        self.ckpt_root = self.run_dir / "checkpoints"
        self.run_config = run_config if run_config is not None else config

        info = ddp.dist_info()
        self.device = ddp.resolve_train_device(config.device, info)
        self._owns_group = info.distributed and not torch.distributed.is_initialized()
        self.dist = ddp.init_distributed(self.device, config.ddp_backend)
        self.is_main = self.dist.is_main

        model.to(self.device)
        if config.gradient_checkpointing:
            if not hasattr(model, "gradient_checkpointing"):
                raise UserError(f"gradient_checkpointing=true but {type(model).__name__} does not support it")
            model.gradient_checkpointing = True
        self.model = model
        if self.dist.distributed:
            device_ids = [self.device] if self.device.type == "cuda" else None
            self.train_model: nn.Module = DistributedDataParallel(
                model, device_ids=device_ids, find_unused_parameters=config.ddp_find_unused_parameters
            )
        else:
            self.train_model = model

        self.optimizer = build_optimizer(model, config, optimizer_groups)
        self.schedule = WarmupCosineSchedule(config)
        self.ema = EMA(model, config.ema_decay) if config.ema_decay > 0 else None
        self.amp_dtype = autocast_dtype(config.precision, self.device)
        use_scaler = self.amp_dtype == torch.float16 and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if use_scaler else None
        self.step = 0
        self.last_metrics: dict[str, float] = {}
        self.resumed_from: Path | None = None
        self._saved_step = -1
        self._t_start = time.perf_counter()
        self._elapsed_before = 0.0  # training wall time of the runs this one resumed (carried in checkpoints)
        self.metrics = MetricsLogger(self.run_dir / "metrics.jsonl" if self.is_main else None)
        if not hasattr(train_data, "state_dict"):
            warnings.warn(
                "train_data has no state_dict(): a resumed run restarts the data from its beginning",
                stacklevel=2,
            )

        if not resume and ckpt.list_checkpoints(self.ckpt_root):
            raise UserError(f"{self.run_dir} already holds checkpoints; resume it or choose another run dir")
        if resume:
            self._resume(resume)
        if self.resumed_from is None:  # a fresh start: seed, and forget rows of an earlier uncheckpointed try
            ckpt.seed_everything(config.seed + self.dist.rank)
            self.metrics.truncate_after(-1)
        if self.is_main:
            save_config(self.run_config, self.run_dir / "config.yaml")

    # --- pieces ---------------------------------------------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the configured precision (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    @contextlib.contextmanager
    def eval_weights(self) -> Iterator[nn.Module]:
        """The plain model with the EMA weights swapped in when EMA is on (for evaluation and export)."""
        with self.ema.swapped() if self.ema is not None else contextlib.nullcontext():
            yield self.model

    def _next_batch(self, it: Iterator[Any]) -> tuple[Any, Iterator[Any]]:
        try:
            return next(it), it
        except StopIteration:  # a finite source: start its next pass
            it = iter(self.train_data)
            try:
                return next(it), it
            except StopIteration:
                raise UserError("the training data yielded no batches") from None

    def _train_step(self, it: Iterator[Any]) -> tuple[dict[str, Any], int, Iterator[Any]]:
        """One optimizer update over ``grad_accum_steps`` micro-batches; returns (metrics, tokens, iterator)."""
        cfg = self.config
        accum = cfg.grad_accum_steps
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, Any] = {}
        tokens = 0
        for micro in range(accum):
            batch, it = self._next_batch(it)
            if (main := _main_tensor(batch)) is not None and main.numel() == 0:
                raise UserError(f"the training data yielded an empty batch at step {self.step + 1} (batch size 0?)")
            batch = move_to_device(batch, self.device)
            last = micro == accum - 1
            sync = (
                contextlib.nullcontext() if last or not self.dist.distributed else self.train_model.no_sync()
            )
            with sync:
                with self.autocast():
                    loss, metrics = self.loss_fn(self.train_model, batch)
                scaled = loss / accum
                (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
            metrics = dict(metrics)
            n = metrics.pop("num_tokens", None)
            tokens += int(n) if n is not None else count_tokens(batch)
            metrics.pop("loss", None)  # the logged loss is always the returned tensor's
            metrics.pop("grad_norm", None)
            sums["loss"] = sums.get("loss", 0.0) + loss.detach().float()
            for k, v in metrics.items():
                sums[k] = sums.get(k, 0.0) + (v.detach().float() if torch.is_tensor(v) else float(v))
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if cfg.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        else:
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            grad_norm = torch.nn.utils.get_total_norm(grads)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        out = {k: v / accum for k, v in sums.items()}
        out["grad_norm"] = grad_norm.detach()
        return out, tokens, it

    def _log(self, window: _Window, lr: float, bar: Any) -> None:
        means = ddp.all_reduce_mean(window.means(), self.device)
        if not math.isfinite(means["loss"]):
            raise UserError(
                f"training loss is {means['loss']} at step {self.step}; stopping before a checkpoint or export of "
                f"broken weights (the last checkpoint in {self.ckpt_root} is intact)"
            )
        row = {"step": self.step, "loss": means.pop("loss"), "lr": lr, "grad_norm": means.pop("grad_norm")}
        row["tokens_per_s"] = window.tokens * self.dist.world_size / window.train_seconds()
        row["elapsed_s"] = self.elapsed()
        row.update(means)
        self.metrics.log(row)
        self.last_metrics.update({k: v for k, v in row.items() if k not in ("step", "elapsed_s")})
        bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lr:.2e}", refresh=False)
        window.reset()

    def evaluate(self) -> dict[str, float]:
        """Run ``eval_fn`` (every rank, EMA weights, eval mode, no grad, fixed-seed forked RNG); log and return
        rank 0's results."""
        if self.eval_fn is None:
            return {}
        devices = [self.device] if self.device.type == "cuda" else []
        was_training = self.model.training
        with torch.random.fork_rng(devices=devices), self.eval_weights() as model, torch.no_grad():
            torch.manual_seed(self.config.seed)
            model.eval()
            with self.autocast():
                results: dict[str, float] | None = {k: float(v) for k, v in self.eval_fn(model).items()}
        self.model.train(was_training)
        results = ddp.broadcast_object(results)
        assert results is not None
        prefixed = {f"eval/{k}": v for k, v in results.items()}
        self.metrics.log({"step": self.step, **prefixed})
        self.last_metrics.update(prefixed)
        return results

    def trainer_state(self) -> dict[str, Any]:
        """Everything but the weights that an exact resume needs (RNG states gathered from every rank)."""
        rng = ddp.gather_objects(ckpt.capture_rng_state())
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "data": self.train_data.state_dict() if hasattr(self.train_data, "state_dict") else None,
            "rng": rng,
            "loss_rng": ddp.gather_objects(ckpt.capture_owned_generators(self.loss_fn)),
            "world_size": self.dist.world_size,
            "elapsed_s": self.elapsed(),
        }

    def elapsed(self) -> float:
        """Wall-clock seconds of training so far, including the runs this one resumed from."""
        return self._elapsed_before + time.perf_counter() - self._t_start

    def save_checkpoint(self) -> Path | None:
        """Write the checkpoint of the current step (rank 0; every rank must call it). Returns its path."""
        state = self.trainer_state()  # collective: all ranks
        path = None
        if self.is_main:
            path = ckpt.save_checkpoint(
                self.ckpt_root,
                self.step,
                model=self.model,
                trainer_state=state,
                ema_state=self.ema.state_dict() if self.ema is not None else None,
                config=self.run_config,
                keep_last=self.config.keep_last,
            )
        ddp.barrier()
        self._saved_step = self.step
        return path

    def _resume(self, resume: bool | str | os.PathLike) -> None:
        path = ckpt.find_latest(self.ckpt_root) if resume is True else Path(resume)
        if path is None:
            return
        stored = path / "config.yaml" if (path / "config.yaml").is_file() else self.run_dir / "config.yaml"
        provenance.check_resume(stored, self.run_config, self.resume_may_change)
        state = ckpt.load_checkpoint(path, self.model, self.device)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            if state["ema"] is not None:
                self.ema.load_state_dict(state["ema"])
            else:
                warnings.warn(
                    f"{path} has no EMA weights; EMA restarts from the current weights", stacklevel=2
                )
        if state.get("data") is not None:
            if not hasattr(self.train_data, "load_state_dict"):
                raise UserError(
                    "the checkpoint holds a data position but train_data cannot load_state_dict()"
                )
            self.train_data.load_state_dict(state["data"])
        self.step = int(state["step"])
        self._elapsed_before = float(state.get("elapsed_s", 0.0))
        rng = state["rng"]
        if int(state["world_size"]) == self.dist.world_size:
            ckpt.restore_rng_state(rng[self.dist.rank])
            if state.get("loss_rng") is not None:
                ckpt.restore_owned_generators(self.loss_fn, state["loss_rng"][self.dist.rank])
        else:  # a different number of processes: exact replay is impossible; reseed deterministically
            ckpt.seed_everything(self.config.seed + self.dist.rank + 1_000_003 * self.step)
        self.resumed_from = path
        self._saved_step = self.step
        self.metrics.truncate_after(self.step)

    # --- the loop -------------------------------------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        """Train to ``max_steps``; returns the last logged train metrics, eval metrics and ``step``."""
        cfg = self.config
        self._t_start = time.perf_counter()
        it = iter(self.train_data)
        bar = progress_bar(cfg.max_steps, self.step, enabled=cfg.progress and self.is_main)
        window = _Window()
        self.train_model.train()
        try:
            if cfg.eval_at_start and self.step == 0:
                self.evaluate()  # a baseline, and any mistake in the eval settings shows now, not after training
                window.reset()
            while self.step < cfg.max_steps:
                lr = self.schedule.apply(self.optimizer)
                values, tokens, it = self._train_step(it)
                self.schedule.step()
                self.step += 1
                if self.ema is not None:
                    self.ema.update()
                window.add(values, tokens)
                bar.update(1)
                done = self.step == cfg.max_steps
                if done or (cfg.log_every and self.step % cfg.log_every == 0):
                    self._log(window, lr, bar)
                t_aside = time.perf_counter()
                if not done and cfg.eval_every and self.step % cfg.eval_every == 0:
                    self.evaluate()
                if not done and cfg.save_every and self.step % cfg.save_every == 0:
                    self.save_checkpoint()
                window.excluded += time.perf_counter() - t_aside
            self.evaluate()
            if self._saved_step != self.step:
                self.save_checkpoint()
        finally:
            bar.close()
            self.metrics.close()
        if self._owns_group:
            ddp.cleanup()
            self._owns_group = False
        return {"step": self.step, **self.last_metrics, "wall_s": self.elapsed()}
