"""``maskzoo protein score`` and ``score-variants --method`` end to end; bad input: exit 2, one line on stderr,
no output written and every pre-existing file unchanged."""

from __future__ import annotations

import csv
import json
import re

import pytest

from maskzoo.core.cli import main


def test_score_prints_id_length_bits(tiny_dsm_dir, tmp_path, capsys):
    fasta = tmp_path / "s.fasta"
    fasta.write_text(">a first\nMKTAYIAKQR\n>b\nmktay\n")
    assert main(["protein", "score", str(fasta), "--checkpoint", str(tiny_dsm_dir), "--samples", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split("\t")[:2] for ln in lines] == [["a", "10"], ["b", "5"]]
    bits = [float(ln.split("\t")[2]) for ln in lines]
    assert all(2.0 < b < 10.0 for b in bits)  # a random tiny model: near log2(33) = 5.04
    out = tmp_path / "s.tsv"
    assert main(["protein", "score", str(fasta), "--checkpoint", str(tiny_dsm_dir), "--samples", "4", "--pll",
                 "--out", str(out)]) == 0  # fmt: skip
    rows = [ln.split("\t") for ln in out.read_text().splitlines()]
    assert [float(r[2]) for r in rows] == pytest.approx(bits, abs=1e-4) and all(len(r) == 4 for r in rows)
    assert main(["protein", "score", str(fasta), "--checkpoint", str(tiny_dsm_dir), "--samples", "4",
                 "--jsonl"]) == 0  # fmt: skip
    recs = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in recs] == ["a", "b"] and recs[0]["bits_per_residue"] == pytest.approx(bits[0], abs=1e-4)


@pytest.mark.parametrize("method", ["masked-marginal", "wt-marginal", "elbo-diff"])
def test_score_variants_methods(tiny_dsm_dir, tmp_path, method):
    v = tmp_path / "v.csv"
    v.write_text("\ufeffmutant,DMS\nM1A,0.1\nK2C:T3W,0.2\nM1M,0\n")  # with a byte-order mark
    out = tmp_path / "o.csv"
    assert main(["protein", "score-variants", "--checkpoint", str(tiny_dsm_dir), "--sequence", "MKTAYI",
                 "--variants", str(v), "--out", str(out), "--method", method, "--samples", "4"]) == 0  # fmt: skip
    rows = list(csv.DictReader(open(out)))
    assert list(rows[0]) == ["mutant", "DMS", "score"]
    scores = [float(r["score"]) for r in rows]
    assert scores[2] == pytest.approx(0.0, abs=1e-6) and scores[0] != 0.0  # the wild type scores 0 by every method


BAD = [
    (["score", "{dup}"], "duplicate record id 'a'"),
    (["score", "{long}"], "record 'long' has 200 residues"),
    (["score", "{stop}"], "stop codon"),
    (["score", "{empty}"], "no FASTA records"),
    (["score", "{ok}", "--samples", "0"], "--samples"),
    (["score", "{ok}", "--out", "{dir}"], "directory"),
    (["score-variants", "--sequence", "MKTAYI", "--variants", "{dupcol}"], "repeated column name"),
    (["score-variants", "--sequence", "MKTAYI", "--variants", "{emptycsv}"], "empty file"),
    (["score-variants", "--sequence", "MKTAYI", "--variants", "{nomut}"], "no column 'mutant'"),
    (["score-variants", "--sequence", "M" * 300 + "J", "--variants", "{v}"], "invalid residue 'J'"),
    (["score-variants", "--sequence", "MKTAYI", "--variants", "{v}", "--method", "best"], "--method"),
    (["generate", "--temperature", "nan"], "--temperature"),
    (["generate", "--block-length", "4", "--length", "8"], "--block-length is not supported"),
]


@pytest.mark.parametrize("argv, message", BAD)
def test_bad_input_exit_2_one_line_files_unchanged(tiny_dsm_dir, tmp_path, capsys, argv, message):
    files = {"dup": ">a\nMKT\n>a\nMKV\n", "long": ">ok\nMKT\n>long\n" + "A" * 200 + "\n", "stop": ">a\nMKT*\n",
             "empty": "", "ok": ">a\nMKT\n", "dupcol": "mutant,s,s\nM1A,1,2\n", "emptycsv": "",
             "nomut": "variant\nM1A\n", "v": "mutant\nM1A\n"}  # fmt: skip
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.{'csv' if name in ('dupcol', 'emptycsv', 'nomut', 'v') else 'fasta'}"
        paths[name].write_text(text)
    paths["dir"] = tmp_path / "adir"
    paths["dir"].mkdir()
    out = tmp_path / "out.tsv"
    out.write_text("precious\n")
    before = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    argv = [a.format(**paths) for a in argv]
    extra = [] if "--out" in argv else ["--out", str(out)]
    try:
        rc = main(["protein", argv[0], "--checkpoint", str(tiny_dsm_dir), *argv[1:], *extra])
    except SystemExit as e:  # an option's value rejected by argparse
        rc = e.code
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert captured.err.count("\n") == 1 and re.match(r"maskzoo[a-z -]*: error: ", captured.err), captured.err
    assert re.search(message, captured.err), captured.err
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before  # nothing written or replaced


def _with_generation(src, dst, block):
    import shutil

    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.setdefault("extra", {})["generation"] = block
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_generation_block_gives_the_defaults(tiny_dsm_dir, tmp_path, capsys):
    greedy = _with_generation(tiny_dsm_dir, tmp_path / "greedy", {"gen_length": 12, "temperature": 0.0,
                                                                  "remasking": "low_confidence"})  # fmt: skip
    outs = []
    for seed in ("1", "2"):
        assert main(["protein", "generate", "--checkpoint", str(greedy), "--num", "1", "--seed", seed]) == 0
        outs.append(capsys.readouterr().out.splitlines()[1])
    assert outs[0] == outs[1] and len(outs[0]) == 12  # greedy from the block: seeds do not matter; its length
    assert main(["protein", "generate", "--checkpoint", str(greedy), "--num", "1", "--seed", "1",
                 "--temperature", "1", "--remasking", "random", "--length", "30"]) == 0  # fmt: skip
    assert len(capsys.readouterr().out.splitlines()[1]) == 30  # the command line wins
    bad = _with_generation(tiny_dsm_dir, tmp_path / "bad", {"temperature": -1})
    assert main(["protein", "generate", "--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "generation.temperature" in err


def test_evaluate_out_keeps_other_files_and_refuses_a_regular_file(tmp_path, capsys):
    gen = tmp_path / "g.fasta"
    gen.write_text(">g0\nMKTAYIAKQRQISF\n>g1\nGSHMLEDPVAGKLVW\n")
    small = ["--reference", str(gen), "--train", str(gen), "--no-plots"]
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    assert main(["protein", "evaluate", str(gen), "--out", str(out), *small]) == 0
    assert (out / "notes.txt").read_text() == "mine\n" and (out / "report.md").is_file()
    capsys.readouterr()
    regular = tmp_path / "file.txt"
    regular.write_text("keep\n")
    assert main(["protein", "evaluate", str(gen), "--out", str(regular), *small]) == 2
    assert regular.read_text() == "keep\n" and capsys.readouterr().err.count("\n") == 1


def test_checkpoint_accepts_a_run_directory(tiny_dsm_dir, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_dsm_dir, run / "model")
    (run / "checkpoints").mkdir()
    fasta = tmp_path / "s.fasta"
    fasta.write_text(">a\nMKTAYIAKQR\n")
    assert main(["protein", "score", str(fasta), "--checkpoint", str(run), "--samples", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("a\t10\t") and "using its exported model" in captured.err


def test_quiet_silences_status_and_train_says_where_the_model_went(tiny_dsm_dir, tmp_path, capsys):
    fasta = tmp_path / "s.fasta"
    fasta.write_text("".join(f">c{i}\n{'MKTAYIAKQRQISFVKSHFSRQ'[i:] * 2}\n" for i in range(8)))
    args = ["protein", "score", str(fasta), "--checkpoint", str(tiny_dsm_dir), "--samples", "2"]
    assert main(args) == 0
    assert "scored 8 sequence(s)" in capsys.readouterr().err
    assert main([*args, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    run = tmp_path / "run"
    assert main(["protein", "train", f"run_dir={run}", f"export={run / 'model'}", f"data.train={fasta}",
                 f"data.valid={fasta}", "model.num_layers=1", "model.embed_dim=16", "model.attention_heads=2",
                 "data.crop_len=32", "data.max_tokens=128", "train.max_steps=2", "train.warmup_steps=1",
                 "data.num_valid=2", "diffusion.elbo_samples=2", "train.eval_every=2", "train.progress=false"]) == 0
    err = capsys.readouterr().err
    assert f"model written to {run / 'model'}" in err and (run / "model" / "config.json").is_file()
    gen = json.loads((run / "model" / "config.json").read_text())["extra"]["generation"]
    assert gen["remasking"] == "random" and gen["temperature"] == 1.0
