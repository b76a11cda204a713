"""The synthetic exact-answer tasks: answers are right, the layout is fixed, the scorer accepts every valid answer."""

from __future__ import annotations

import torch

from maskzoo.core.synthetic.tasks import (
    ANSWER_LEN,
    PROMPT_LEN,
    TASKS,
    SyntheticTokenizer,
    accuracy,
    make_batch,
)


def test_every_task_answers_its_prompt():
    g = torch.Generator().manual_seed(0)
    for name, task in TASKS.items():
        for _ in range(50):
            prompt, valid = task(g)
            body = prompt[1:-1]
            if name == "copy":
                assert valid == [body]
            elif name == "reverse":
                assert valid == [body[::-1]]
            elif name == "sort":
                assert valid == ["".join(sorted(body))]
            elif name == "add":
                a, b = body.split("+")
                assert int(valid[0]) == int(a) + int(b) and len(valid[0]) == len(a) + 1
            else:
                a, b = body.split("|")
                assert valid == [a + b, b + a]


def test_batch_layout_and_scorer():
    tok = SyntheticTokenizer()
    ids, maskable, answers = make_batch(tok, 10, torch.Generator().manual_seed(1))
    assert ids.shape == (10, PROMPT_LEN + ANSWER_LEN) and bool(maskable[:, PROMPT_LEN:].all())
    assert not bool(maskable[:, :PROMPT_LEN].any()) and not bool((ids == tok.mask_id).any())
    assert accuracy(tok, ids[:, PROMPT_LEN:], answers) == 1.0  # the training targets are valid answers
    pair = next(i for i in range(10) if len(answers[i]) == 2)
    swapped = ids[pair : pair + 1, PROMPT_LEN:].clone()
    swapped[0, :6] = torch.tensor(tok.encode(answers[pair][1] if tok.decode(swapped[0].tolist()) == answers[pair][0]
                                             else answers[pair][0]))
    assert accuracy(tok, swapped, [answers[pair]]) == 1.0  # the other order is right too
    mixed = swapped.clone()
    mixed[0, 0] = (mixed[0, 0] + 1) % 10
    assert accuracy(tok, mixed, [answers[pair]]) == 0.0
