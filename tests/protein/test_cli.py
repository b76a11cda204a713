"""``maskzoo protein ...`` end to end on a tiny model: outputs, determinism, conditioning, bad input."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from maskzoo.core.cli import main
from maskzoo.protein.alphabet import CANONICAL
from maskzoo.protein.fasta import read_fasta


def _fasta_out(capsys):
    text = capsys.readouterr().out
    recs = [ln for ln in text.splitlines() if ln and not ln.startswith(">")]
    return recs, text


def test_generate_unconditional_is_seeded_and_canonical(tiny_dsm_dir, capsys):
    args = [
        "protein",
        "generate",
        "--checkpoint",
        str(tiny_dsm_dir),
        "--num",
        "3",
        "--length",
        "10-12",
        "--seed",
        "7",
    ]
    assert main(args) == 0
    seqs, text = _fasta_out(capsys)
    assert len(seqs) == 3 and all(10 <= len(s) <= 12 and set(s) <= set(CANONICAL) for s in seqs)
    assert main(args) == 0
    assert _fasta_out(capsys)[1] == text  # same seed, same output
    assert main(args[:-1] + ["8"]) == 0
    assert _fasta_out(capsys)[1] != text


def test_generate_template_motif_binder_and_out_file(tiny_dsm_dir, capsys, tmp_path):
    ck = ["--checkpoint", str(tiny_dsm_dir)]
    assert main(["protein", "generate", *ck, "--num", "2", "--template", "MK___GL", "--remasking", "low_confidence",
                 "--steps", "3"]) == 0  # fmt: skip
    seqs, _ = _fasta_out(capsys)
    assert all(len(s) == 7 and s.startswith("MK") and s.endswith("GL") for s in seqs)
    assert (
        main(
            ["protein", "generate", *ck, "--num", "2", "--length", "12", "--motif", "WWW@3", "--motif", "CC"]
        )
        == 0
    )
    seqs, _ = _fasta_out(capsys)
    assert all(s[2:5] == "WWW" and "CC" in s and len(s) == 12 for s in seqs)
    out = tmp_path / "binders.fasta"
    assert (
        main(
            [
                "protein",
                "generate",
                *ck,
                "--num",
                "2",
                "--length",
                "5",
                "--target",
                "MKTAYIAK",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    recs = read_fasta(out)
    assert [len(r.seq) for r in recs] == [5, 5]


@pytest.mark.parametrize("ext", [".npz", ".pt", ".safetensors"])
def test_embed_formats(tiny_dsm_dir, tmp_path, ext):
    from maskzoo.protein.embed import load_embeddings

    fasta = tmp_path / "in.fasta"
    fasta.write_text(">a\nMKTAYIAK\n>b\nGSHM\n")
    out = tmp_path / f"emb{ext}"
    assert (
        main(
            [
                "protein",
                "embed",
                str(fasta),
                "--checkpoint",
                str(tiny_dsm_dir),
                "--out",
                str(out),
                "--per-residue",
            ]
        )
        == 0
    )
    e = load_embeddings(out)
    assert e.ids == ["a", "b"] and tuple(e.mean.shape) == (2, 32)
    assert e.residues(0).shape == (8, 32) and e.residues(1).shape == (4, 32)
    assert e.residues(1).mean(0).allclose(e.mean[1], atol=1e-6)


def test_score_variants_cli(tiny_dsm_dir, tmp_path):
    v = tmp_path / "v.tsv"
    v.write_text("mutant\tDMS\nM1A\t0.1\nK2C:T3W\t0.2\n")
    out = tmp_path / "s.tsv"
    assert main(["protein", "score-variants", "--checkpoint", str(tiny_dsm_dir), "--sequence", "MKTAYI",
                 "--variants", str(v), "--out", str(out)]) == 0  # fmt: skip
    rows = list(csv.DictReader(open(out), delimiter="\t"))
    assert [list(r) for r in rows] == [["mutant", "DMS", "score"]] * 2 and float(rows[0]["score"]) != 0.0


def test_evaluate_report(tmp_path):
    pytest.importorskip("matplotlib")
    gen = tmp_path / "g.fasta"
    gen.write_text("".join(f">g{i}\n{s}\n" for i, s in enumerate(
        ["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ", "GSHMLEDPVAGKLVVTAEEKLLSRAEQ", "AAAAAAAKLLEEKKLLEE"])))  # fmt: skip
    out = tmp_path / "report"
    assert main(["protein", "evaluate", str(gen), "--out", str(out)]) == 0
    import json

    m = json.loads((out / "metrics.json").read_text())
    assert m["generated"]["count"] == 3 and m["generated"]["homopolymer_run5_rate"] == pytest.approx(1 / 3)
    assert 0 <= m["generated"]["jsd_1mer"] <= 1 and "novelty_mean" in m["generated"]
    assert {p.name for p in out.glob("*.png")} == {"composition.png", "lengths.png", "nearest_identity.png"}


BAD = [
    (["generate", "--template", "MK__1L"], "--template position 5"),
    (["generate", "--length", "500"], "longer than the model's context"),
    (["generate", "--length", "ten"], "--length 'ten'"),
    (["generate", "--motif", "WW@x"], "--motif WW@x"),
    (["generate", "--target", "MKZ1"], "--target"),
    (["score-variants", "--sequence", "MKTAYI", "--variants", "{v}", "--out", "{out}"], "'A2W'"),
    (["embed", "{long}", "--out", "{out}"], "record 'long'"),
    (["embed", "{empty}", "--out", "{out}"], "no FASTA records"),
    (["embed", "{bad}", "--out", "{out}"], r"record 'b'.*invalid residue 'J'"),
    (["embed", "{bad}", "--out", "{out}.txt"], "unknown extension"),
]


@pytest.mark.parametrize("argv, message", BAD)
def test_bad_input_one_line_exit_2_no_output(tiny_dsm_dir, tmp_path, capsys, argv, message):
    files = {"v": tmp_path / "v.csv", "long": tmp_path / "long.fasta", "empty": tmp_path / "empty.fasta",
             "bad": tmp_path / "bad.fasta", "out": tmp_path / "out.npz"}  # fmt: skip
    files["v"].write_text("mutant\nM1A\nA2W\nX9A\n")
    files["long"].write_text(">ok\nMKT\n>long\n" + "A" * 200 + "\n")
    files["empty"].write_text("")
    files["bad"].write_text(">a\nMKT\n>b\nMJT\n")
    argv = [a.format(**files) for a in argv]
    rc = main(["protein", argv[0], "--checkpoint", str(tiny_dsm_dir), *argv[1:]])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("maskzoo: error:"), err
    import re

    assert re.search(message, err), err
    assert not any(p.name.startswith("out") or p.name.startswith(".out") for p in tmp_path.iterdir())


def test_corrupt_checkpoint_via_real_command(tmp_path):
    """The installed ``maskzoo`` executable: one line on stderr, exit 2, no traceback."""
    bad = tmp_path / "esm2_broken.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    proc = subprocess.run(
        [sys.executable, "-m", "maskzoo.core.cli", "protein", "generate", "--checkpoint", str(bad), "--num", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "esm2_broken.pt" in proc.stderr


def test_evaluate_report_is_tables_and_skips_length_test_for_fixed_lengths(tmp_path):
    gen, ref = tmp_path / "g.fasta", tmp_path / "r.fasta"
    gen.write_text("".join(f">g{i}\n{s}\n" for i, s in enumerate(["MKTAYIAKQRQISF", "GSHMLEDPVAGKLV", "AEEKLLSRAEQLLK"])))
    ref.write_text("".join(f">r{i}\n{s}\n" for i, s in enumerate(["MKLVVTAEEKLLSRAEQ", "GSHMLEDPVAG", "KLLEEKKLLEEAAWY"])))
    out = tmp_path / "report"
    assert main(["protein", "evaluate", str(gen), "--reference", str(ref), "--train", str(ref), "--out", str(out),
                 "--no-plots"]) == 0  # fmt: skip
    md = (out / "report.md").read_text()
    assert "| 1-mer JSD (bits) |" in md and "## Targets" in md and "{" not in md  # tables, no pasted JSON
    assert "All generated sequences have 14 residues" in md and "Kolmogorov" not in md
    import json

    assert "ks_statistic" not in json.loads((out / "metrics.json").read_text())["lengths"]
