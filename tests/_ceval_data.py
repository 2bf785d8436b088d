"""Writes a C-Eval-shaped data dir (one subject) from questions a test defines; shared by the API tests."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path


def write_ceval_subject(root: Path, questions: Sequence[Sequence[str]], subject: str = "computer_network") -> Path:
    """`root/ceval/{dev,val}/<subject>_{split}.csv` (the same rows in both) and `subject_mapping.json`."""
    for split in ("dev", "val"):
        folder = root / "ceval" / split
        folder.mkdir(parents=True)
        with open(folder / f"{subject}_{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "question", "A", "B", "C", "D", "answer"])
            writer.writerows([i, *q] for i, q in enumerate(questions))
    (root / "ceval" / "subject_mapping.json").write_text(
        json.dumps({subject: ["Computer Network", "计算机网络", "STEM"]}, ensure_ascii=False), encoding="utf-8")
    return root
