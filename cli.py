"""synth's command line: thin typer commands over the packages (nothing imports this module).

The commands that run work (eval, evolve, baseline, export) are here; those that read a run are in
synth/commands/runs.py and `providers` in synth/commands/providers.py.
Exit codes: 0 done; 1 the candidate was rejected, its run failed, or an export did not verify;
2 bad input (usage, config value, missing file, corrupt or foreign run directory); 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from synth.commands import providers as providers_command
from synth.commands import runs
from synth.commands.common import (EXIT_FAILED, EXIT_INTERRUPTED, TRACK_HELP, console, errors, fail, open_run,
                                   print_json)

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode="rich",
                  help="synth: evolve neural-network optimizers for the caffeine attention benchmark.")


# ---------------------------------------------------------------------------- tracks
@app.command()
def tracks(as_json: bool = typer.Option(False, "--json", help="Print the track settings as JSON.")) -> None:
    """List the benchmark tracks with their settings and targets."""
    from dataclasses import asdict

    from evaluator.tracks import TRACKS

    if as_json:
        print_json({name: asdict(spec) for name, spec in TRACKS.items()})
        return
    table = Table(title="caffeine tracks (docs/BENCHMARK.md)", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    for col in ("track", "task", "train/eval", "batch", "steps", "eval every", "target"):
        table.add_column(col, no_wrap=True)
    for spec in TRACKS.values():
        target = f"MSE <= {spec.target_mse:g}" if spec.task == "regression" else f"acc >= {spec.target_accuracy:g}"
        table.add_row(spec.name, spec.task, f"{spec.train_samples}/{spec.eval_samples}", str(spec.batch_size),
                      str(spec.max_steps), str(spec.eval_every), target)
    console.print(table)
    for spec in TRACKS.values():  # prose under the table, so the table fits 80 columns
        console.print(f"[bold]{spec.name}[/]: {escape(spec.description)}", highlight=False)


# ---------------------------------------------------------------------------- eval
@app.command("eval")
def eval_file(
    file: Path = typer.Argument(..., help="A Submission file (ours or anyone's)."),
    track: str = typer.Option(..., "--track", "-t", help=TRACK_HELP),
    steps: Optional[int] = typer.Option(None, min=1, help="Training steps (default: the track's 400)."),
    seed_set: str = typer.Option("benchmark", help="'benchmark' or 'heldout-K' (all five seeds changed)."),
    timeout: Optional[float] = typer.Option(None, help="Wall-clock limit in seconds (default per track)."),
    device: str = typer.Option("cpu", "--device", help="'cpu' or 'cuda:N': where the worker trains."),
    as_json: bool = typer.Option(False, "--json", help="Print the result record only, as JSON."),
) -> None:
    """Score a Submission file on a track in the sandbox, exactly as the benchmark would."""
    from evaluator.pool import parse_devices
    from evaluator.sandbox import Limits, Sandbox
    from evaluator.tracks import get_track, seed_set as parse_seed_set
    from synth.search.fitness import describe

    try:
        get_track(track)
        parse_seed_set(seed_set)
        if len(parse_devices(device, 1)) != 1 or "," in device:
            raise ValueError(f"--device takes one device, e.g. cpu or cuda:0; got {device!r}")
    except ValueError as err:
        fail(str(err))
    try:
        source = file.read_text()
    except (OSError, UnicodeDecodeError) as err:
        fail(f"cannot read {file}: {err}")
    with Sandbox(Limits(timeout_s=timeout), device=device) as sandbox:
        if not as_json:
            with console.status(f"scoring {file.name} on {track} ({steps or get_track(track).max_steps} steps)"):
                result = sandbox.evaluate(source, track, steps=steps, seed_set=seed_set, submission=file.stem)
        else:
            result = sandbox.evaluate(source, track, steps=steps, seed_set=seed_set, submission=file.stem)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        table = Table(title=f"{file.name} on {track} ({seed_set} seeds)", show_header=False)
        table.add_row("outcome", result.outcome)
        if result.outcome == "ok":
            table.add_row("verdict", describe(result))
            metric = "final_eval_mse" if get_track(track).task == "regression" else "final_eval_accuracy"
            table.add_row(metric, repr(getattr(result, metric)))
            table.add_row("curve", "  ".join(f"{p.step}:{p.metric:.4g}" for p in result.curve))
            table.add_row("training wall time", f"{result.training_wall_time_s:.2f} s")
            table.add_row("candidate total", f"{result.total_s:.2f} s")
        if result.isolation:
            table.add_row("isolation", result.isolation)
        console.print(table)
    if result.outcome != "ok":
        reason = (result.error or result.outcome).strip().splitlines()
        fail(f"{result.outcome}: {reason[-1] if reason else ''}", EXIT_FAILED)


# ---------------------------------------------------------------------------- evolve
@app.command()
def evolve(
    track: Optional[str] = typer.Option(None, "--track", "-t", help=f"{TRACK_HELP} (default mqar); a comma list scores every candidate on each (cheap first)."),
    generations: Optional[int] = typer.Option(None, "--generations", "-g", min=0, help="Budget: GENERATIONS x POPULATION children in all (default 10)."),
    population: Optional[int] = typer.Option(None, "--population", "-p", min=2, help="Alive candidates; a child sees every result from this many candidates back (default 16)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="RNG seed: same seed, same run (without LLM)."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", "-d", help="Run directory (default runs/TRACK-seedS). An existing one is resumed."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Parallel workers (default: one per core or per listed GPU)."),
    devices: Optional[str] = typer.Option(None, help="'cpu' or 'cuda:0,cuda:1'."),
    backend: Optional[str] = typer.Option(None, help="'local' (default) or 'ray'."),
    address: Optional[str] = typer.Option(None, help="Ray address for --backend ray: 'auto' or 'ray://HOST:PORT'."),
    steps: Optional[int] = typer.Option(None, min=1, help="Training steps per candidate (default: the track's 400)."),
    proxy_steps: Optional[int] = typer.Option(None, min=0, help="Fidelity cascade: a child's run stops at this step unless its eval metric there reaches the population's --proxy-quantile (default 100; 0 turns it off)."),
    proxy_quantile: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Cascade threshold: the quantile of the population's metrics at the proxy step that a child must reach (default 0.75)."),
    tournament: Optional[int] = typer.Option(None, min=1, help="Tournament size (default 4)."),
    finalists: Optional[int] = typer.Option(None, min=0, help="Top candidates re-scored on held-out seeds and checked at the end (default 3)."),
    heldout: Optional[int] = typer.Option(None, min=1, help="Held-out seed sets per finalist (default 3)."),
    robust: Optional[int] = typer.Option(None, min=1, help="Search fitness = mean over K seed sets (benchmark + search-1..K-1); K times the cost."),
    llm: Optional[List[str]] = typer.Option(None, "--llm", help="LLM for code edits, e.g. openai:MODEL, anthropic:MODEL, openai:MODEL@http://host:port/v1[,weight=2]. Repeat for an ensemble."),
    llm_rate: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Share of children made by LLM operators."),
    llm_budget: Optional[float] = typer.Option(None, min=0.0, help="LLM budget in USD; then genetic operators only."),
    llm_budget_tokens: Optional[int] = typer.Option(None, min=0, help="LLM budget in tokens."),
    llm_price: Optional[str] = typer.Option(None, "--llm-price", help="IN,OUT: USD per million tokens for models without a known price (needed for --llm-budget)."),
    prompts: Optional[Path] = typer.Option(None, "--prompts", help="Directory whose templates override the packaged prompts."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file with these settings (flags win)."),
    timeout: Optional[float] = typer.Option(None, help="Per-candidate wall-clock limit in seconds."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", min=0.0, help="Minutes of this invocation after which no new child is proposed (running ones finish); the same command resumes."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live view; print the summary only."),
    as_json: bool = typer.Option(False, "--json", help="Print the end-of-run summary as JSON."),
) -> None:
    """Evolve optimizers on a track; run again on the same --run-dir to resume."""
    from population.db import RunDB, RunDirError
    from population.rundir import check_new_run_dir, lock_run_dir
    from synth.config import ConfigError, load_config
    from synth.search.engine import NothingAlive
    from synth.search.runner import SetupError, preflight, run_evolution

    overrides = dict(track=track, generations=generations, population=population, seed=seed, workers=workers,
                     devices=devices, backend=backend, ray_address=address, steps=steps, proxy_steps=proxy_steps, proxy_quantile=proxy_quantile,
                     tournament=tournament, finalists=finalists, heldout=heldout, robust=robust, llm=llm or None, llm_rate=llm_rate, llm_budget_usd=llm_budget,
                     llm_budget_tokens=llm_budget_tokens, llm_price=llm_price, prompts_dir=str(prompts) if prompts else None,
                     timeout_s=timeout)
    try:
        if run_dir is None:
            fresh = load_config(config, overrides)
            run_dir = Path("runs") / f"{'+'.join(fresh.tracks)}-seed{fresh.search.seed}"
        if (run_dir / "synth.db").exists():  # resume: lock first, then read what the run is
            lock_run_dir(run_dir, "evolve")
            db = RunDB.open(run_dir)
            cfg = load_config(config, overrides, stored=db.config())
            preflight(cfg)
            resumed = True
        else:  # new: everything checked before a file is written
            check_new_run_dir(run_dir)
            cfg = load_config(config, overrides)
            preflight(cfg)
            lock_run_dir(run_dir, "evolve")
            db, resumed = RunDB.open_or_create(run_dir, cfg.flat())
            if resumed:
                cfg = load_config(config, overrides, stored=db.config())
    except (ConfigError, RunDirError, SetupError) as err:
        fail(str(err))
    with db:
        try:
            summary = run_evolution(db, cfg, run_dir, resumed, console=errors if as_json else console,
                                    live=not (quiet or as_json), summary=not as_json,
                                    time_budget_s=60 * time_budget if time_budget is not None else None)
        except KeyboardInterrupt:
            errors.print(f"interrupted: every finished evaluation is saved. Resume with: synth evolve --run-dir {run_dir}")
            raise typer.Exit(EXIT_INTERRUPTED)
        except NothingAlive as err:
            fail(str(err), EXIT_FAILED)
    if as_json:
        print_json(summary)


# ---------------------------------------------------------------------------- baseline
@app.command()
def baseline(
    track: Optional[str] = typer.Option(None, "--track", "-t", help=f"{TRACK_HELP} (default mqar)."),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="adamw (default), adam, lion, sgd, rmsprop or muon."),
    trials: Optional[int] = typer.Option(None, "--trials", "-n", min=1, help="Trials in all (default 50); a resumed study may be given more."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sampler seed: same seed, same trials."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", "-d", help="Run directory (default runs/baseline-OPTIMIZER-TRACK-seedS). An existing one is resumed."),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Parallel workers (default: one per core)."),
    steps: Optional[int] = typer.Option(None, min=1, help="Training steps per trial (default: the track's 400)."),
    batch: Optional[int] = typer.Option(None, min=1, help="Trials asked of the sampler at once (default 4); part of what the study is."),
    proxy_steps: Optional[int] = typer.Option(None, min=0, help="Fidelity cascade step, as for evolve (default 100; 0 off)."),
    finalists: Optional[int] = typer.Option(None, min=0, help="Best trials re-scored on held-out seeds at the end (default 1)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per trial; print the summary only."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Tune a standard optimizer with Optuna (seeded TPE), scored like evolve: the bar a search must clear."""
    from population.db import RunDB, RunDirError
    from synth.baseline.study import load_baseline_config, run_baseline
    from synth.config import ConfigError

    overrides = dict(track=track, optimizer=optimizer, trials=trials, seed=seed, workers=workers, steps=steps,
                     batch=batch, proxy_steps=proxy_steps, finalists=finalists)
    try:
        if run_dir is not None and (run_dir / "synth.db").exists():
            db = RunDB.open(run_dir)
            cfg = load_baseline_config(overrides, stored=db.config())
        else:
            cfg = load_baseline_config(overrides)
            run_dir = run_dir or Path("runs") / f"baseline-{cfg.optimizer}-{cfg.track}-seed{cfg.seed}"
            db, resumed = RunDB.open_or_create(run_dir, cfg.model_dump())
            if resumed:
                cfg = load_baseline_config(overrides, stored=db.config())
    except (ConfigError, RunDirError) as err:
        fail(str(err))
    out = errors if as_json else console
    with db:
        out.print(f"baseline [bold]{run_dir}[/]: {cfg.optimizer} on {cfg.track}, {cfg.trials} trials, seed {cfg.seed}",
                  highlight=False)
        try:
            summary = run_baseline(db, cfg, out, quiet=quiet or as_json)
        except KeyboardInterrupt:
            errors.print(f"interrupted: every finished trial is saved. Resume with: synth baseline --run-dir {run_dir}")
            raise typer.Exit(EXIT_INTERRUPTED)
    if as_json:
        print_json(summary)
    elif summary["best"]:
        best = summary["best"]
        console.print(f"best trial #{best['id']}: {best['verdict']} (fitness {best['fitness']:.4f}); "
                      f"{summary['trials']} trials, {summary['evaluations']} evaluations in {summary['wall_s']} s",
                      highlight=False)
        console.print(f"next: synth show {run_dir} | synth export {run_dir} --out best/", highlight=False)


# ---------------------------------------------------------------------------- reading a run, export
app.command()(runs.show)
app.command()(runs.lineage)


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    candidate: Optional[int] = typer.Argument(None, help="Candidate id (default: the best)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory: submission.py, lineage.md, lineage.json."),
    verify: bool = typer.Option(True, help="Re-score the file in the sandbox and check it matches the database."),
    force: bool = typer.Option(False, "--force", help="Overwrite an earlier export in --out."),
    transfer: str = typer.Option("all", "--transfer", help="Tracks for the transfer table: all, none, or a list "
                                 "like single_ar,mqar (random_teacher takes minutes per run on CPU)."),
    transfer_seeds: str = typer.Option("benchmark,heldout", "--transfer-seeds",
                                       help="Seed sets for the transfer table: benchmark, heldout, or both."),
    transfer_steps: Optional[int] = typer.Option(None, "--transfer-steps", min=1,
                                                 help="Training steps for the transfer table (default: the run's "
                                                      "--steps, else each track's benchmark budget)."),
) -> None:
    """Write a winner as a benchmark-ready submission.py with its lineage and its verdict on every track.

    Everything is scored on the run's own device and limits; transfer verdicts are kept in the run,
    so a second export does not pay for them again."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from population.db import RunDirError
    from population.rundir import lock_run_dir
    from synth.winners.export import ExportMismatch, check_out_dir, export_candidate
    from synth.reporting.queries import resolve_candidate
    from synth.winners.transfer import parse_seed_kinds, parse_tracks

    try:
        tracks, kinds = parse_tracks(transfer), parse_seed_kinds(transfer_seeds)
    except ValueError as err:
        fail(str(err))
    db = open_run(run_dir)
    with db:
        try:
            check_out_dir(out, force)
            lock_run_dir(run_dir, "export")  # it records the finalist checks and transfer verdicts in the run
            cand_id = resolve_candidate(db, candidate)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console, transient=True) as bar:
                task = bar.add_task("exporting", total=None)

                def progress(what: str, done: int, total: int) -> None:
                    bar.update(task, description=what, completed=done, total=total or None)

                written = export_candidate(db, cand_id, out, verify=verify, force=force, transfer_tracks=tracks,
                                           transfer_seeds=kinds, transfer_steps=transfer_steps, progress=progress)
        except (ValueError, RunDirError) as err:
            fail(str(err))
        except ExportMismatch as err:
            fail(str(err), EXIT_FAILED)
    for path in written:
        console.print(f"wrote {path}")


app.command("llm")(runs.llm_calls)
app.command()(providers_command.providers)
app.command()(runs.report)
app.command()(runs.plot)


if __name__ == "__main__":
    app()
