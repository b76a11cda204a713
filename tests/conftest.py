"""Suite-wide settings: one torch thread per test process.

The suite runs many tiny models; on a 2-core CI machine intra-op threading only adds contention (measured
10-30x slow-downs for tiny ops while other processes run), and subprocess tests (torchrun, CLI) run beside it.
"""

import torch

torch.set_num_threads(1)
