"""The text area end to end: tokenizer, training recipe, generate/eval commands, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from maskzoo.core.cli import main
from maskzoo.core.errors import UserError
from maskzoo.core.text.model import load_text_model
from maskzoo.core.text.tokenizer import CharTokenizer

RECIPE = Path(__file__).resolve().parents[2] / "apps" / "recipes" / "text_char_shakespeare.yaml"
TINY = ["model.d_model=32", "model.n_layers=1", "model.n_heads=2", "model.max_seq_len=64", "data.seq_len=32",
        "data.batch_size=4", "train.max_steps=3", "train.warmup_steps=1", "train.eval_every=0",
        "train.save_every=2", "eval.windows=2", "eval.num_samples=2", "train.progress=false"]


def test_tokenizer_owns_special_ids_and_round_trips():
    tok = CharTokenizer.from_text("hello world\n")
    assert tok.chars == "\n dehlorw"
    assert (tok.pad_id, tok.eos_id, tok.mask_id, tok.vocab_size) == (9, 10, 11, 12)
    ids = tok.encode("hello")
    assert tok.decode(ids) == "hello"
    assert tok.decode([*ids.tolist(), tok.mask_id, tok.eos_id, 0]) == "hello"  # specials dropped, EOS stops
    assert CharTokenizer.from_json(tok.to_json()) == tok
    with pytest.raises(UserError, match="'Z'"):
        tok.encode("Zebra")


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("text_run")
    rc = main(["text", "train", "--config", str(RECIPE), *TINY, f"run_dir={run}", f"export={run / 'model'}"])
    assert rc == 0
    return run / "model"


def test_training_says_where_the_model_went_and_a_run_dir_is_a_checkpoint(tmp_path: Path, capsys):
    run = tmp_path / "run"
    assert main(["text", "train", "--config", str(RECIPE), *TINY, f"run_dir={run}", "export=null"]) == 0
    err = capsys.readouterr().err
    assert f"model written to {run / 'model'}" in err
    meta = json.loads((run / "model" / "config.json").read_text())
    assert meta["extra"]["generation"]["temperature"] > 0  # exported models sample by default
    args = ["text", "generate", "--length", "8", "--steps", "8", "--seed", "1", "--temperature", "0"]
    assert main([*args, "--checkpoint", str(run)]) == 0
    out = capsys.readouterr()
    assert f"using its exported model {run / 'model'}" in out.err
    assert main([*args, "--checkpoint", str(run / "model")]) == 0
    assert capsys.readouterr().out == out.out
    # without the export, the latest step checkpoint (step 3: the same weights) is used, and said so
    shutil.rmtree(run / "model")
    assert main([*args, "--checkpoint", str(run)]) == 0
    step = capsys.readouterr()
    assert "latest checkpoint" in step.err and "step_0000003" in step.err and step.out == out.out


def test_generation_block_is_used_unless_overridden(tiny_model_dir: Path, tmp_path: Path, capsys):
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model_dir)
    meta = json.loads((model_dir / "config.json").read_text())
    meta["extra"]["generation"] = {"gen_length": 12, "temperature": 0.0, "remasking": "random", "block_length": 4}
    (model_dir / "config.json").write_text(json.dumps(meta))
    assert main(["text", "generate", "--checkpoint", str(model_dir), "--jsonl"]) == 0
    out = capsys.readouterr()
    assert len(json.loads(out.out)["text"]) == 12 and "remasking=random" in out.err and "block_length=4" in out.err
    assert main(["text", "generate", "--checkpoint", str(model_dir), "--length", "6", "--block-length", "6",
                 "--remasking", "margin", "--quiet"]) == 0
    out = capsys.readouterr()
    assert len(out.out.rstrip("\n")) == 6 and out.err == ""
    assert main(["text", "generate", "--checkpoint", str(model_dir), "--length", "6"]) == 2
    assert "--block-length (from the checkpoint's generation block) = 4" in capsys.readouterr().err
    meta["extra"]["generation"]["temperature"] = -1
    (model_dir / "config.json").write_text(json.dumps(meta))
    assert main(["text", "generate", "--checkpoint", str(model_dir)]) == 2
    assert "generation.temperature" in capsys.readouterr().err


def test_train_recipe_writes_a_loadable_model(tiny_model_dir: Path):
    model, tok = load_text_model(tiny_model_dir)
    assert model.mask_id == tok.mask_id
    assert model.config.d_model == 32 and not model.config.causal
    ids = tok.encode("First Citizen:").unsqueeze(0)  # [1, 14]
    logits = model(ids)
    assert logits.shape == (1, 14, tok.vocab_size)
    meta = json.loads((tiny_model_dir / "config.json").read_text())
    assert meta["extra"]["objective"] == "diffusion" and meta["extra"]["train_summary"]["step"] == 3
    metrics = [json.loads(x) for x in (tiny_model_dir.parent / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/val_bpc" in m for m in metrics)


def test_autoregressive_baseline_trains_with_the_same_recipe(tmp_path: Path):
    rc = main(["text", "train", "--config", str(RECIPE), *TINY, "objective=autoregressive", f"run_dir={tmp_path}",
               f"export={tmp_path / 'm'}"])
    assert rc == 0
    model, _ = load_text_model(tmp_path / "m")
    assert model.config.causal


def test_generate_command_is_repeatable_and_keeps_the_prompt(tiny_model_dir: Path, tmp_path: Path, capsys):
    args = ["text", "generate", "--checkpoint", str(tiny_model_dir), "--prompt", "ROMEO:", "--length", "16",
            "--steps", "8", "--block-length", "8", "--temperature", "1.0", "--num", "2", "--seed", "3",
            "--remasking", "low_confidence"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.startswith("=== sample 0 ===\nROMEO:") and "\n=== sample 1 ===\nROMEO:" in first
    assert main([*args, "--out", str(tmp_path / "s.txt")]) == 0
    assert (tmp_path / "s.txt").read_text() == first
    assert main([*args, "--jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["sample"] for r in rows] == [0, 1] and all(len(r["text"]) == 6 + 16 for r in rows)


def test_eval_command_reports_bits_per_char(tiny_model_dir: Path, capsys):
    assert main(["text", "eval", "--checkpoint", str(tiny_model_dir), "--seq-len", "32", "--max-windows", "4",
                 "--num-samples", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    # an almost untrained model: about log2(V) bits, and an upper bound, so never below 0
    assert 2.0 < result["bits_per_char"] < 9.0 and result["bound"] == "elbo"


def test_embedded_default_samples_with_temperature_so_seeds_differ(capsys):
    args = ["text", "generate", "--prompt", "KING", "--length", "32", "--jsonl", "--num", "3"]
    assert main([*args, "--seed", "0"]) == 0
    first = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert all(t.startswith("KING") and len(t) == 36 for t in first)
    assert len(set(first)) == 3  # three different samples in one call
    assert main([*args, "--seed", "1"]) == 0
    second = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert second != first
    assert main([*args, "--seed", "0"]) == 0
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == first


def test_python_api_pipeline_and_generate_text():
    from maskzoo.core import generate_text, load_pipeline

    pipe = load_pipeline()
    ids = pipe.encode("ROMEO:")
    assert pipe.decode(ids) == "ROMEO:" and pipe.generation["temperature"] > 0
    a = pipe.generate("ROMEO:", num=2, seed=0, gen_length=16)
    assert len(a) == 2 and all(t.startswith("ROMEO:") and len(t) == 22 for t in a)
    assert generate_text("ROMEO:", seed=0, gen_length=16) == pipe.generate("ROMEO:", seed=0, gen_length=16)[0]
    assert pipe.generate("ROMEO:", num=2, seed=0, gen_length=16) == a
    with pytest.raises(UserError, match="gen_length"):
        pipe.generate("ROMEO:", gen_length=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["text", "generate", "--checkpoint", "/no/such/dir"], "/no/such/dir"),
        (["text", "generate", "--checkpoint", "@TINY", "--prompt", "x" * 60, "--length", "16"], "context"),
        (["text", "generate", "--checkpoint", "@TINY", "--prompt", "~~~"], "'~'"),
        (["text", "train", "--config", str(RECIPE), "train.max_stepz=3"], "max_stepz"),
        (["text", "train", "--config", "/no/recipe.yaml"], "/no/recipe.yaml"),
        (["text", "generate", "--checkpoint", "@TRUNCATED"], "model.safetensors"),
        (["text", "generate", "--temperature", "nan"], "--temperature"),
        (["text", "generate", "--steps", "0"], "--steps"),
        (["text", "generate", "--num", "-2"], "--num"),
        (["text", "generate", "--top-p", "0"], "--top-p"),
        (["text", "generate", "--remasking", "greedy"], "--remasking"),
        (["text", "eval", "--batch-size", "0"], "--batch-size"),
        (["text", "eval", "--max-windows", "0"], "--max-windows"),
        (["text", "eval", "--num-samples", "3"], "--num-samples must be even"),
        (["text", "eval", "--checkpoint", "@TINY", "--seq-len", "65"], "--seq-len 65 exceeds"),
        (["text", "train", "--config", str(RECIPE), "export=@FILE"], "not a directory"),
        (["text", "train", "--config", str(RECIPE), "data.batch_size=0"], "data.batch_size"),
        (["text", "train", "--config", str(RECIPE), "eval.num_samples=3"], "eval.num_samples"),
        (["text", "train", "--config", str(RECIPE), "model.n_heads=3"], "model.n_heads"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tiny_model_dir, tmp_path, capsys):
    truncated = tmp_path / "truncated"
    shutil.copytree(tiny_model_dir, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    subs = {"@TINY": str(tiny_model_dir), "@TRUNCATED": str(truncated), "export=@FILE": f"export={a_file}"}
    args = [subs.get(a, a) for a in args]
    out_file = tmp_path / "never.txt"
    if args[1] in ("generate", "eval"):
        args += ["--out", str(out_file)]
    try:
        rc = main(args)
    except SystemExit as e:  # argparse rejects a bad option value before the command runs
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and "Traceback" not in err[0]
    assert not out_file.exists() and a_file.read_text() == "keep me"
