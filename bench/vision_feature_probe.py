"""Are the embedded captioner's image features compositional? Linear probes for colour and shape.

    python bench/vision_feature_probe.py [--checkpoint DIR]

One-object scenes; the features of the object's cell (tower output, and after the projector) are read by a
linear classifier (standardised features, Adam, 300 full-batch steps) trained on the 24 seen colour-shape pairs
(1500 scenes), then tested on fresh scenes of the seen pairs and of the 6 held-out pairs (300 each). A
factorised representation reads held-out pairs as well as seen ones; a conjunctive one does not.
"""

from __future__ import annotations

import argparse
import random

import torch

from maskzoo.vision import Captioner
from maskzoo.vision.scenes import COLOURS, HELD_OUT_PAIRS, SHAPES, SIZES, Scene, SceneGenerator, SceneObject


def cell_features(model, pairs, n, seed):
    """(tower features, projected features, colour labels, shape labels) of the object's cell."""
    gen = SceneGenerator("all", model.tower.image_size[0])
    rng = random.Random(seed)
    ims, colours, shapes, cells = [], [], [], []
    for _ in range(n):
        c, s = rng.choice(pairs)
        r, q = rng.randrange(3), rng.randrange(3)
        ims.append(gen.render(Scene((SceneObject(s, c, rng.choice(list(SIZES)), r, q),)), rng))
        colours.append(list(COLOURS).index(c))
        shapes.append(SHAPES.index(s))
        cells.append(r * 3 + q)
    with torch.no_grad():
        f = model.tower(model.tower.preprocess(ims))  # [n, 9, C]
        p = model.projector(f)  # [n, 9, D]
    rows = torch.arange(n)
    idx = torch.tensor(cells)
    return f[rows, idx], p[rows, idx], torch.tensor(colours), torch.tensor(shapes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = Captioner.from_pretrained(args.checkpoint).model
    seen = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in HELD_OUT_PAIRS]
    train = cell_features(model, seen, 1500, 0)
    test_held = cell_features(model, sorted(HELD_OUT_PAIRS), 300, 1)
    test_seen = cell_features(model, seen, 300, 2)
    for name, k in (("tower", 0), ("projector", 1)):
        for attr, j, n_cls in (("colour", 2, len(COLOURS)), ("shape", 3, len(SHAPES))):
            x = train[k]
            mu, sd = x.mean(0), x.std(0) + 1e-5
            probe = torch.nn.Linear(x.shape[1], n_cls)
            opt = torch.optim.Adam(probe.parameters(), 1e-2, weight_decay=1e-4)
            for _ in range(300):
                loss = torch.nn.functional.cross_entropy(probe((x - mu) / sd), train[j])
                opt.zero_grad()
                loss.backward()
                opt.step()

            def acc(d, k=k, j=j, probe=probe, mu=mu, sd=sd):
                return (probe((d[k] - mu) / sd).argmax(-1) == d[j]).float().mean().item()

            print(f"{name:9s} {attr:6s} seen pairs {acc(test_seen):.3f}   held-out pairs {acc(test_held):.3f}")


if __name__ == "__main__":
    main()
