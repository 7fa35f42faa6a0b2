"""`hil train / evaluate / model info|ship` from the command line, and torch staying lazy."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

# The one datasets root: $HIL_DATA_DIR, ../shared/datasets beside a checkout, or what
# `hil data fetch` wrote (hil.paths).
from hil.paths import datasets_dir  # noqa: E402

DATASETS = datasets_dir()
needs_data = pytest.mark.skipif(not DATASETS.is_dir(), reason=f"datasets not found at {DATASETS}")


def test_help_works_without_torch() -> None:
    """torch is imported inside handlers only: block it and the parser must still build."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from hil.cli import build_parser\n"
            "p = build_parser()\n"
            "for c in (['train', '--help'], ['evaluate', '--help'], ['model', 'info', '--help']):\n"
            "    try:\n"
            "        p.parse_args(c)\n"
            "    except SystemExit as e:\n"
            "        assert e.code == 0, c\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_model_info_without_torch() -> None:
    code = ("import sys; sys.modules['torch'] = None\n"
            "from hil.cli import main\n"
            "assert main(['model', 'info']) == 0\n")
    r = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    # The paper's accounting of its 1.95 MB (backbone fp32 + 4TD fp32 at T=256) beside ours.
    assert "1,953.3 kB" in r.stdout and "357,248" in r.stdout and "two accountings" in r.stdout


def test_train_needs_data_or_corpus(capsys: pytest.CaptureFixture[str]) -> None:
    from hil.cli import main

    assert main(["train", "--out", "/tmp/never"]) == 2
    assert "--data" in capsys.readouterr().err


@needs_data
def test_train_ship_evaluate_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from hil.cli import main
    from hil.model.ship import ship

    data = tmp_path / "sms"
    data.mkdir()
    (data / "labels.json").write_text((DATASETS / "sms_spam" / "labels.json").read_text())
    with gzip.open(DATASETS / "sms_spam" / "train.jsonl.gz", "rt") as f:
        rows = [json.loads(next(f)) for _ in range(240)]
    (data / "train.csv").write_text("text,label\n" + "".join(
        '"' + r["text"].replace('"', '""') + f'",{["ham", "spam"][r["label"]]}\n'
        for r in rows[:200]))
    (data / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[200:]))
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(out), "--epochs", "2",
                 "--max-len", "32", "--threads", "1", "--patience", "0"]) == 0
    ck_metrics = json.loads((out / "metrics.json").read_text())
    assert ck_metrics["args"]["command"].startswith("hil train --data")
    assert 18 <= ck_metrics["dev"]["n"] <= 22  # no dev split: ~10% of train carved
    # Training never reads test (docs/model-selection.md): `hil model test` does, once, and
    # records it; `hil evaluate` on the same model agrees with the recorded number.
    assert "test" not in ck_metrics
    read = tmp_path / "read.json"
    from hil.errors import UsageError

    with pytest.raises(UsageError, match="hil model test"):  # shipping comes after the read
        ship(out, "tiny", dest=tmp_path / "models")
    mtest = ["model", "test", str(out), "--data", str(data), "--no-int8"]
    assert main([*mtest, "--json", str(read)]) == 0
    row = json.loads(read.read_text())["runs"][0]
    ledger = [json.loads(line) for line in (out / "test_reads.jsonl").read_text().splitlines()]
    assert len(ledger) == 1 and ledger[0]["weights_sha256"] == row["weights_sha256"]
    assert row["chosen_on_dev"] and not row["again"] and ledger[0]["utc"]
    assert main(mtest) == 2  # a second look is refused ...
    assert main([*mtest, "--again"]) == 0  # ... or recorded as one
    assert [r["again"] for r in map(json.loads, (out / "test_reads.jsonl").read_text()
                                     .splitlines())] == [False, True]
    js = tmp_path / "eval.json"
    assert main(["evaluate", str(out), "--data", str(data), "--json", str(js)]) == 0
    ev = json.loads(js.read_text())
    assert ev["n"] == 40 == row["sentences"]
    assert round(100 * ev["accuracy"], 2) == pytest.approx(row["acc_fp32"])
    assert sum(map(sum, ev["confusion"])) == 40
    # Shipping into a scratch models dir writes the three files and the slice record.
    # (The dataset is not under ../shared, so point the checkpoint at the scratch dir.)
    import torch

    ck = torch.load(out / "model.pt", weights_only=False)
    ck["dataset"] = str(data)
    torch.save(ck, out / "model.pt")
    shipped = ship(out, "tiny", dest=tmp_path / "models",
                   seeds=json.loads(read.read_text()))
    assert {p.name for p in shipped.iterdir()} == {"model.pt", "tokenizer.json", "card.md",
                                                   "test_reads.jsonl"}
    card = (shipped / "card.md").read_text()
    assert "read once" in card and "mean ± sd" in card and "(shipped: best dev)" in card
    rec = torch.load(shipped / "model.pt", weights_only=False)["slice"]
    assert rec["n"] == 40 and rec["correct"] == round(ev["accuracy"] * 40)
