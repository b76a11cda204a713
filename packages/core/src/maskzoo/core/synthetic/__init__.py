"""Synthetic tasks with exact answers (addition, sorting, reversal, copying, a task with two valid answers): a
small zoo model trained on them measures what fast decoding costs in accuracy (``bench/bench_fast_decoding.py``)."""

from .tasks import TASKS, SyntheticTokenizer, accuracy, make_batch

__all__ = ["TASKS", "SyntheticTokenizer", "accuracy", "make_batch"]
