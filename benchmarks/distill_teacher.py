"""Teacher accuracy per dataset: frozen all-MiniLM-L6-v2 + a logistic head fitted on train,
picked on dev, scored on test. The ceiling that distillation can pass on to EmbBERT.

Embeddings are cached (hil/model/teacher.py), so datasets that share texts (hwu64 and
nlu_scenario) cost one embedding pass. Appends one row per dataset to
benchmarks/results/distill_teacher.json (rows of the same dataset are replaced).

  python benchmarks/distill_teacher.py nlu_scenario hwu64 sms_spam
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hil.model import data as D
from hil.model.distill import DistillArgs, prepare_teacher

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("datasets", nargs="+")
    p.add_argument("--teacher", default="minilm")
    p.add_argument("--teacher-max-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    path = RESULTS / "distill_teacher.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    for name in a.datasets:
        t0 = time.monotonic()
        ds = D.load_dataset(name)
        t = prepare_teacher(ds, DistillArgs(teacher=a.teacher, transfer_docs=0,
                                            teacher_max_len=a.teacher_max_len), a.threads)
        row = {"dataset": name, **t.report, "wall_s": round(time.monotonic() - t0, 1),
               "train_n": len(ds.train), "dev_n": len(ds.dev), "dev_source": ds.dev_source}
        rows = [r for r in rows if r["dataset"] != name] + [row]
        print(json.dumps(row), flush=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
