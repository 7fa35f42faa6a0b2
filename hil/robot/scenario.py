"""`Run Scenario`'s work: a whole `hil run` of a scenario on the started board's target and
firmware, judged by the scenario's `expect:` block (kept apart so that hil/robot/__init__.py
stays the list of keywords).

On a board from `Attach Board` (a Renode someone else started, hil.targets.renode_attach) there
is no second instance to boot: the run attaches to the same UART, so the keyword's own session
lets go of it for the run (a second client would split the bytes) and attaches again after.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hil.errors import HilError
from hil.session import BoardSession


def run_scenario(s: BoardSession, scenario: str, *, limit: int | None, jobs: int,
                 out: str | None, log: Callable[..., None]) -> dict[str, Any]:
    """Run `scenario` as the keyword says; the summary's numbers, or the session's failure."""
    from hil.report_cli import write_run_reports
    from hil.runner import RunConfig, run
    from hil.scenario import ScenarioError, load_scenario, resolve_model

    try:
        scen = load_scenario(scenario)
        model = resolve_model(scen.model, scen.path.parent if scen.path else None)
    except ScenarioError as exc:
        raise s.fail(f"scenario {scenario}: {exc}") from None
    if model.read_bytes() != s.model_path.read_bytes():
        raise s.fail(f"scenario {scen.name} streams model {scen.model}, the started "
                     f"board runs {s.model_name}")
    attached = bool(getattr(s.target, "attach_to", None))
    if attached and jobs != 1:
        raise s.fail(f"an attached board is one UART: run scenario {scen.name} with jobs=1")
    out_dir = Path(out) if out else s.run_dir / f"scenario-{scen.name}"
    cfg = RunConfig(board=s.board, target=s.target_kind, scenario=scen, model_path=model,
                    out_dir=out_dir, limit=limit, jobs=jobs, elf=s.elf, port=s.options.port)
    if attached:
        s.stop()
    try:
        code, summary = run(cfg)
    except HilError as exc:
        raise s.fail(f"scenario {scen.name}: {exc}") from None
    finally:
        if attached:
            s.start()
            s.clean()
    numbers: dict[str, Any] = summary.get("summary", {})
    if summary.get("error"):
        raise s.fail(f"scenario {scen.name} did not finish: {summary['error']} "
                     f"(results: {out_dir / 'results.jsonl'})")
    if code != 0:
        raise s.fail(f"scenario {scen.name}: expectations failed: "
                     f"{'; '.join(summary.get('failed', []))} (summary: "
                     f"{out_dir / 'summary.json'})")
    write_run_reports(out_dir)  # report.html, junit.xml, summary.md beside the results
    report = out_dir / "report.html"
    log(f"scenario {scen.name}: {numbers.get('sentences')}/{numbers.get('selected')} "
        f"sentences, agreement {numbers.get('agreement')}, accuracy "
        f"{numbers.get('accuracy')}; <a href=\"{report.resolve().as_uri()}\">report.html"
        f"</a>", "INFO", html=True)
    return numbers
