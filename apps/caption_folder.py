"""Caption every image in a folder from Python, writing ``captions.jsonl`` beside them (or to --out).

    python apps/caption_folder.py FOLDER [--checkpoint DIR] [--prompt "<image> describe the image ."]
                                         [--steps 12] [--batch-size 32] [--out FILE]

Uses :class:`maskzoo.vision.Captioner` (default: the embedded scenes captioner). Every image is read before
anything is captioned, and the output file is written atomically, so a bad image leaves nothing behind.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maskzoo.core.errors import UserError
from maskzoo.core.fileio import atomic_open
from maskzoo.vision import Captioner
from maskzoo.vision.caption import expand_paths
from maskzoo.vision.data import open_image


def caption_folder(folder: str | Path, checkpoint: str | None = None, prompt: str | None = None,
                   out: str | Path | None = None, batch_size: int = 32, **settings) -> Path:
    """Caption the images of ``folder``; returns the JSONL file written ({"image", "caption"} per line)."""
    paths = expand_paths([folder])
    images = [open_image(p) for p in paths]
    captioner = Captioner.from_pretrained(checkpoint)
    captions = captioner.caption(images, prompt=prompt, batch_size=batch_size, progress=len(images) > 8, **settings)
    target = Path(out) if out else Path(folder) / "captions.jsonl"
    with atomic_open(target, "w") as f:
        for p, c in zip(paths, captions):
            f.write(json.dumps({"image": p.name, "caption": c}) + "\n")
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--prompt", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    settings = {"steps": args.steps} if args.steps else {}
    try:
        target = caption_folder(args.folder, args.checkpoint, args.prompt, args.out, args.batch_size, **settings)
    except UserError as e:
        sys.stderr.write(f"caption_folder: error: {e}\n")
        return 2
    sys.stderr.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
