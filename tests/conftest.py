"""Suite-wide settings.

- One torch thread per test process: the suite runs many tiny models; on a 2-core CI machine intra-op
  threading only adds contention (10-30x slow-downs for tiny ops were measured while other processes ran),
  and subprocess tests (torchrun, CLI) run beside it.
- Test modules are imported with ``--import-mode=importlib`` (root pyproject), so areas may reuse file names
  (tests/protein/test_cli.py and tests/vision/test_cli.py); each area's helper modules (``_*.py``) are
  importable by name because their folders are put on ``sys.path`` here.
"""

import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

for area in sorted(p for p in Path(__file__).parent.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
    if str(area) not in sys.path:
        sys.path.insert(0, str(area))
