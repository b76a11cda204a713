"""The procedural scene generator: grammar, determinism and a compositional split that really holds out pairs."""

from __future__ import annotations

import json
import re

import pytest

from maskzoo.core.errors import UserError
from maskzoo.vision.scenes import (
    COLOURS,
    HELD_OUT_PAIRS,
    PLURALS,
    SHAPES,
    SceneGenerator,
    caption_vocabulary,
    write_scene_folder,
)

N = 400


def _caption_pairs(caption: str) -> set[tuple[str, str]]:
    """Colour-shape pairs mentioned in a caption ("red circle", "red circles")."""
    nouns = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}
    words = caption.split()
    return {(a, nouns[b]) for a, b in zip(words, words[1:]) if a in COLOURS and b in nouns}


def test_train_split_never_shows_a_held_out_pair():
    gen = SceneGenerator("train")
    for i in range(N):
        scene = gen.scene(i)
        assert not scene.pairs() & HELD_OUT_PAIRS
        assert not _caption_pairs(scene.caption) & HELD_OUT_PAIRS


def test_heldout_split_always_shows_one():
    gen = SceneGenerator("heldout")
    for i in range(N):
        scene = gen.scene(i)
        assert scene.pairs() & HELD_OUT_PAIRS
        assert _caption_pairs(scene.caption) & HELD_OUT_PAIRS


def test_every_colour_and_shape_is_still_seen_in_training():
    gen = SceneGenerator("train")
    seen = set().union(*(gen.scene(i).pairs() for i in range(N)))
    assert {c for c, _ in seen} == set(COLOURS) and {s for _, s in seen} == set(SHAPES)
    assert {c for c, _ in HELD_OUT_PAIRS} == set(COLOURS)  # each colour loses exactly one shape


def test_items_are_pure_functions_of_split_seed_index():
    a, b = SceneGenerator("train"), SceneGenerator("train")
    im1, c1 = a.item(7, seed=3)
    im2, c2 = b.item(7, seed=3)
    assert c1 == c2 and im1.tobytes() == im2.tobytes() and im1.size == (48, 48)
    assert a.item(8, seed=3)[1] != c1 or a.item(8, seed=3)[0].tobytes() != im1.tobytes()


def test_grammar_and_vocabulary():
    vocab = set(caption_vocabulary())
    single = re.compile(r"^a (small|large) \w+ \w+ at the (top left|top|top right|left|center|right|bottom left|bottom|bottom right)$")
    for i in range(200):
        scene = SceneGenerator("all").scene(i)
        cap = scene.caption
        assert set(cap.split()) <= vocab
        if len(scene.objects) == 1:
            assert single.match(cap), cap
        else:
            groups = cap.split(" and ")
            assert sum(["one", "two", "three", "four"].index(g.split()[0]) + 1 for g in groups) == len(scene.objects)


def test_bad_split_is_a_user_error():
    with pytest.raises(UserError, match="split"):
        SceneGenerator("valid")


def test_scene_folder_round_trip(tmp_path):
    write_scene_folder(tmp_path / "s", 3, split="heldout", image_size=32)
    rows = [json.loads(x) for x in (tmp_path / "s" / "captions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all((tmp_path / "s" / r["image"]).is_file() for r in rows)


def test_uncoloured_scenes_name_no_colour_and_stay_far_from_the_palette():
    gen = SceneGenerator("train", p_uncoloured=0.5)
    found = 0
    for i in range(200):
        scene = gen.scene(i)
        assert not scene.pairs() & HELD_OUT_PAIRS
        if scene.objects[0].rgb is not None:
            found += 1
            assert not set(scene.caption.split()) & set(COLOURS)
            for o in scene.objects:
                assert min(sum((a - b) ** 2 for a, b in zip(o.rgb, p)) ** 0.5 for p in COLOURS.values()) >= 120
    assert 60 < found < 140
    assert SceneGenerator("heldout", p_uncoloured=0.5).scene(0).objects[0].rgb is None  # train split only
