"""Typed configs: dataclass schema <- YAML recipe <- key=value overrides; mistakes are UserErrors naming the key."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from omegaconf import MISSING

from maskzoo.core.config import load_config, merge_overrides, parse_overrides, save_config, to_yaml
from maskzoo.core.errors import UserError
from maskzoo.core.training import TrainConfig


@dataclass
class ModelCfg:
    d_model: int = 32
    name: str = MISSING


@dataclass
class Recipe:
    model: ModelCfg = field(default_factory=ModelCfg)
    train: TrainConfig = field(default_factory=TrainConfig)
    data_path: str = "data.txt"
    tags: list[str] = field(default_factory=list)
    note: str | None = None


def _yaml(tmp_path, text: str):
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return p


def test_layers_defaults_yaml_overrides(tmp_path):
    p = _yaml(tmp_path, "model:\n  name: tiny\n  d_model: 64\ntrain:\n  lr: 0.002\n  max_steps: 50\n")
    cfg = load_config(Recipe, p, ["train.max_steps=7", "tags=[a,b]", "note=hi"])
    assert isinstance(cfg, Recipe) and isinstance(cfg.train, TrainConfig) and isinstance(cfg.model, ModelCfg)
    assert cfg.model.d_model == 64 and cfg.model.name == "tiny"
    assert cfg.train.lr == 0.002 and cfg.train.max_steps == 7  # override beats YAML
    assert cfg.train.warmup_steps == TrainConfig().warmup_steps  # default kept
    assert cfg.tags == ["a", "b"] and cfg.note == "hi" and cfg.data_path == "data.txt"


def test_no_yaml_only_overrides():
    cfg = load_config(TrainConfig, None, ["lr=0.5", "precision=bf16", "progress=false"])
    assert cfg.lr == 0.5 and cfg.precision == "bf16" and cfg.progress is False


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["train.lrr=1"], "unknown config key 'train.lrr'"),
        (["modle.name=x"], "unknown config key 'modle'"),
        (["train.max_steps=ten"], "train.max_steps"),
        (["model.d_model=1.5"], "model.d_model"),
        (["train.progress=maybe"], "train.progress"),
        (["justakey"], "key=value"),
    ],
)
def test_bad_overrides_are_user_errors(overrides, match):
    with pytest.raises(UserError, match=match):
        load_config(Recipe, None, ["model.name=x", *overrides])


def test_bad_yaml_is_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown config key 'train.learning_rate'"):
        load_config(Recipe, _yaml(tmp_path, "model: {name: a}\ntrain:\n  learning_rate: 0.1\n"))
    with pytest.raises(UserError, match="train.max_steps"):
        load_config(Recipe, _yaml(tmp_path, "model: {name: a}\ntrain: {max_steps: many}\n"))
    with pytest.raises(UserError, match="not a valid YAML"):
        load_config(Recipe, _yaml(tmp_path, "model: [unclosed\n"))
    with pytest.raises(UserError, match="mapping"):
        load_config(Recipe, _yaml(tmp_path, "- a\n- b\n"))
    with pytest.raises(UserError, match="not found"):
        load_config(Recipe, tmp_path / "nope.yaml")


def test_missing_required_value_names_the_key():
    with pytest.raises(UserError, match="'model.name' has no value"):
        load_config(Recipe)


def test_save_round_trip(tmp_path):
    cfg = load_config(Recipe, None, ["model.name=m", "train.lr=0.01", "tags=[x]"])
    out = save_config(cfg, tmp_path / "sub" / "config.yaml")
    assert out.read_text() == to_yaml(cfg)
    assert load_config(Recipe, out) == cfg
    assert not list((tmp_path / "sub").glob(".*"))  # no temp files left


def test_merge_and_parse_helpers():
    merged = merge_overrides(TrainConfig(), ["lr=0.1"])
    assert merged.lr == 0.1
    with pytest.raises(UserError, match="unknown config key 'nope'"):
        merge_overrides(TrainConfig, ["nope=1"])
    assert parse_overrides(["a.b=1"]).a.b == 1
    with pytest.raises(UserError, match="key=value"):
        parse_overrides(["=1"])
