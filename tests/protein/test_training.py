"""DSM training data (token budget, crops, maskable), exact loader resume, a tiny training run with resume, and
the constructed pairing task for the DSM-ppi format."""

from __future__ import annotations

import random

import pytest
import torch

from maskzoo.core.errors import UserError
from maskzoo.protein.alphabet import get_alphabet
from maskzoo.protein.dataset import Example, TokenBudgetLoader, collate, load_examples

A = get_alphabet()


def _examples(n=60, seed=0, lo=5, hi=80):
    r = random.Random(seed)
    return [Example(torch.tensor(A.residue_ids("".join(r.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(r.randint(lo, hi))))))
            for _ in range(n)]  # fmt: skip


def test_batches_respect_budget_crop_and_specials():
    loader = TokenBudgetLoader(_examples(), max_tokens=200, crop_len=40, seed=1)
    for _ in range(20):
        b = next(loader)
        ids, m, am = b["input_ids"], b["maskable"], b["attention_mask"]
        assert ids.numel() <= 200 and ids.shape[1] <= 42
        assert (ids[:, 0] == A.cls_id).all()
        special = (ids == A.cls_id) | (ids == A.eos_id) | (ids == A.pad_id)
        assert not (m & special).any()  # special tokens and padding are never maskable
        assert torch.equal(m | special, torch.ones_like(m)) and torch.equal(am.bool(), ids != A.pad_id)


def test_loader_resume_is_exact():
    a = TokenBudgetLoader(_examples(), max_tokens=300, crop_len=50, seed=3)
    for _ in range(7):
        next(a)
    state = a.state_dict()
    expected = [next(a) for _ in range(15)]  # crosses an epoch boundary
    b = TokenBudgetLoader(_examples(), max_tokens=300, crop_len=50, seed=3)
    b.load_state_dict(state)
    for e in expected:
        got = next(b)
        assert all(torch.equal(got[k], e[k]) for k in e)
    with pytest.raises(UserError, match="examples"):
        TokenBudgetLoader(_examples(10), 300, 50).load_state_dict(state)


def test_pair_collate_masks_only_the_binder():
    target, binder = torch.tensor(A.residue_ids("MKTAY")), torch.tensor(A.residue_ids("GGL"))
    b = collate([(binder, target)])
    ids, m = b["input_ids"][0], b["maskable"][0]
    assert A.decode(ids) == "MKTAYGGL" and ids[6].item() == A.eos_id and ids[-1].item() == A.eos_id
    assert m.nonzero().flatten().tolist() == [7, 8, 9]  # binder positions only


def test_training_run_and_resume(tmp_path):
    """run_training end to end on a few chains; a resumed run reaches the same weights as an uninterrupted one."""
    from safetensors.torch import load_file

    from maskzoo.core.config import load_config
    from maskzoo.protein.training import ProteinTrainRecipe, run_training

    fasta = tmp_path / "train.fasta"
    fasta.write_text("".join(f">s{i}\n{s}\n" for i, s in enumerate(
        ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVAGKLVVTA", "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERM", "KKLLPPGGAASSTTEE"] * 3)))  # fmt: skip
    common = ["model.num_layers=1", "model.embed_dim=16", "model.attention_heads=2", "model.max_seq_len=64",
              f"data.train={fasta}", f"data.valid={fasta}", "data.crop_len=24", "data.max_tokens=80",
              "data.num_valid=4", "train.max_steps=6", "train.warmup_steps=1", "train.save_every=3",
              "train.eval_every=0", "train.log_every=1", "train.progress=false", "threads=1"]  # fmt: skip
    full = load_config(
        ProteinTrainRecipe, None, common + [f"run_dir={tmp_path / 'a'}", f"export={tmp_path / 'a_model'}"]
    )
    res = run_training(full)
    assert res["step"] == 6 and "eval/val_elbo_bits" in res
    # a run "killed" after its step-3 checkpoint: only that checkpoint survives; resume it to the end
    import shutil

    shutil.copytree(
        tmp_path / "a" / "checkpoints" / "step_0000003", tmp_path / "b" / "checkpoints" / "step_0000003"
    )
    rest = load_config(
        ProteinTrainRecipe, None, common + [f"run_dir={tmp_path / 'b'}", f"export={tmp_path / 'b_model'}"]
    )
    run_training(rest, resume=True)
    wa, wb = (
        load_file(tmp_path / "a_model" / "model.safetensors"),
        load_file(tmp_path / "b_model" / "model.safetensors"),
    )
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


FAMILIES = {"ACDE": "WY", "KLMN": "FG"}  # target alphabet -> binder alphabet


def _pairs(n, seed):
    r = random.Random(seed)
    rows = []
    for _ in range(n):
        t_alpha, b_alpha = r.choice(list(FAMILIES.items()))
        rows.append(
            ("".join(r.choice(t_alpha) for _ in range(6)), "".join(r.choice(b_alpha) for _ in range(4)))
        )
    return rows


def test_pairing_task_learns_binder_given_target(tmp_path):
    """Constructed DSM-ppi task: the binder's alphabet is set by the target's family. After a short paired
    training, binders designed for held-out targets use the right alphabet; the target is never altered."""
    from maskzoo.core.losses import DiffusionLoss
    from maskzoo.protein.generation import SamplerSettings, design_binders
    from maskzoo.protein.model import ESM2, ESM2Config

    pairs_file = tmp_path / "pairs.csv"
    pairs_file.write_text("target,binder\n" + "".join(f"{t},{b}\n" for t, b in _pairs(400, 0)))
    examples = load_examples(pairs_file, paired=True)
    assert examples[0].target is not None
    torch.manual_seed(0)
    model = ESM2(ESM2Config(num_layers=2, embed_dim=32, attention_heads=2, max_seq_len=32))
    loss_fn = DiffusionLoss(model.mask_id, schedule="linear", time_sampler="antithetic", t_min=1e-3)
    loader = TokenBudgetLoader(examples, max_tokens=64 * 14, crop_len=20, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss, _ = loss_fn(model, next(loader))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    gen = torch.Generator().manual_seed(0)
    hits = total = 0
    for target, _ in _pairs(12, 1):
        family = next(b for t, b in FAMILIES.items() if set(target) <= set(t))
        for binder in design_binders(model, target, [4, 4], SamplerSettings(), gen):
            assert len(binder) == 4
            hits += sum(c in family for c in binder)
            total += len(binder)
    assert hits / total >= 0.9, hits / total  # chance level is 2/20 per residue


def test_init_from_fair_esm_turns_token_dropout_off(fair_esm_pt):
    from maskzoo.protein.training import ModelSection, build_model

    path, ref = fair_esm_pt
    model = build_model(ModelSection(init=str(path), max_seq_len=128))
    assert model.config.token_dropout is False and model.config.max_seq_len == 128
    assert model.config.num_layers == ref.num_layers
    assert torch.count_nonzero(model.embed_tokens.weight[A.mask_id]) == 0
    assert torch.equal(model.embed_tokens.weight[5], ref.embed_tokens.weight[5])


def test_dsm_from_esm2_zeroes_the_mask_row_only_after_token_dropout():
    """A fair-esm ESM-2 (token dropout on) gets a zero <mask> row; a DSM model keeps the row it learned."""
    from maskzoo.protein.model import ESM2, ESM2Config, dsm_from_esm2

    torch.manual_seed(0)
    for dropout in (True, False):
        model = ESM2(ESM2Config(num_layers=1, embed_dim=16, attention_heads=2, token_dropout=dropout))
        row = model.embed_tokens.weight[model.mask_id].clone()
        assert row.abs().sum() > 0
        out = dsm_from_esm2(model)
        assert out.config.token_dropout is False
        assert torch.equal(out.embed_tokens.weight[out.mask_id], torch.zeros_like(row) if dropout else row)
