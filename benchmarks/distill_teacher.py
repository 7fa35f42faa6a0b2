"""Teacher accuracy per dataset: frozen all-MiniLM-L6-v2 + a logistic head fitted on train,
picked on dev, scored on test (--teacher minilm); the n-gram teacher (--teacher ngram: TF-IDF +
logistic regression on the span a --max-len student sees); or both mixed with a weight chosen on
dev (--teacher minilm,ngram). The ceiling that distillation can pass on to EmbBERT.

Embeddings are cached (hil/model/teacher.py), so datasets that share texts (hwu64 and
nlu_scenario) cost one embedding pass. Appends one row per dataset to
benchmarks/results/distill_teacher.json (rows of the same dataset are replaced).

  python benchmarks/distill_teacher.py nlu_scenario hwu64 sms_spam
  python benchmarks/distill_teacher.py imdb --teacher-max-len 256 --limit 3000 --threads 1
  python benchmarks/distill_teacher.py imdb bbc_news --teacher ngram --ngram-features word \
      --max-len 256

--limit N scores the teacher on the first N texts of each split (train for the head, dev for its
L2, test for the score; the splits are shuffled at the source): a stated subsample for long-text
sets, where a full embedding pass costs most of an hour on two cores.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from hil.model import data as D
from hil.model.distill import DistillArgs, prepare_teacher
from hil.quant.tokenizer import Tokenizer

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("datasets", nargs="+")
    p.add_argument("--teacher", default="minilm")
    p.add_argument("--teacher-max-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="first N texts of each split; 0 = all")
    p.add_argument("--max-len", type=int, default=64,
                   help="the student's window: the n-gram teacher reads what it would see")
    p.add_argument("--ngram-features", default="both")
    a = p.parse_args(argv)
    path = RESULTS / "distill_teacher.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    for name in a.datasets:
        t0 = time.monotonic()
        ds = D.load_dataset(name)
        if a.limit:
            cut = lambda s: D.Split(s.texts[:a.limit], s.labels[:a.limit])  # noqa: E731
            ds = replace(ds, train=cut(ds.train), dev=cut(ds.dev),
                         test=cut(ds.test) if ds.test else None)
        t = prepare_teacher(ds, DistillArgs(teacher=a.teacher, transfer_docs=0,
                                            teacher_max_len=a.teacher_max_len,
                                            ngram_features=a.ngram_features), a.threads,
                            tok=Tokenizer.from_file(), max_len=a.max_len)
        row = {"dataset": name, **t.report, "wall_s": round(time.monotonic() - t0, 1),
               "train_n": len(ds.train), "dev_n": len(ds.dev), "dev_source": ds.dev_source,
               "teacher_max_len": a.teacher_max_len, "limit": a.limit,
               "student_max_len": a.max_len}
        if a.limit:
            row["note"] = (f"subsample: head fitted on the first {len(ds.train):,} train texts, "
                           f"L2 picked on the first {len(ds.dev):,} dev texts, scored on the "
                           f"first {row.get('test_n', 0):,} test texts; teacher max "
                           f"{a.teacher_max_len} tokens")
        rows = [r for r in rows if (r["dataset"], r.get("teacher", "minilm"))
                != (name, a.teacher)] + [row]
        print(json.dumps(row), flush=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
