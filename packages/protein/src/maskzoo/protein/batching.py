"""Token-budget batching of variable-length sequences (fair-esm ``FastaBatchedDataset.get_batch_indices``).

Sequences are sorted by length and cut into consecutive groups such that ``len(group) * max_len(group)`` (the padded
batch size in tokens) stays within ``max_tokens``: short sequences travel in large batches, long ones in small
ones, and padding waste stays small because neighbours have similar lengths.
"""

from __future__ import annotations

from collections.abc import Sequence


def token_budget_batches(
    lengths: Sequence[int], max_tokens: int, max_batch: int | None = None, order: Sequence[int] | None = None
) -> list[list[int]]:
    """Groups of indices; each group's ``count x longest`` is at most ``max_tokens`` (a longer single item is alone).

    ``order`` gives the candidate order (default: ascending length, ties by index).
    """
    if max_tokens <= 0:
        raise ValueError("max_tokens must be positive")
    idx = list(order) if order is not None else sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in idx:
        n = lengths[i]
        new_longest = max(longest, n)
        too_many = max_batch is not None and len(cur) >= max_batch
        if cur and ((len(cur) + 1) * new_longest > max_tokens or too_many):
            batches.append(cur)
            cur, new_longest = [], n
        cur.append(i)
        longest = new_longest
    if cur:
        batches.append(cur)
    return batches
