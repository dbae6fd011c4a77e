"""`synth providers`: which LLM providers are installed, which models are configured, which keys are set."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from synth.commands.common import console, fail, print_json


def providers(
    llm: Optional[List[str]] = typer.Option(None, "--llm", help="Model specs to check, as for evolve."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="TOML file whose llm entries to check."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """The installed LLM providers, the models configured, and whether their keys are present."""
    from synth.config import ConfigError, load_config
    from synth.llm.registry import installed_providers
    from synth.llm.spec import key_status, parse_llm_spec

    try:
        specs = [parse_llm_spec(s) for s in (llm or (load_config(config, {}).llm.models if config else []))]
    except (ValueError, ConfigError) as err:
        fail(str(err))
    installed = installed_providers()
    models = [{"spec": s.label, "provider": s.provider, "installed": s.provider in installed,
               "key": key_status(s), "weight": s.weight, "temperature": s.temperature, "max_tokens": s.max_tokens}
              for s in specs]
    if as_json:
        print_json({"providers": installed, "models": models})
        return
    table = Table(title="LLM providers (entry-point group synth.providers)")
    table.add_column("provider")
    table.add_column("implementation")
    for name, target in sorted(installed.items()):
        table.add_row(name, target)
    console.print(table)
    if models:
        table = Table(title="configured models")
        for col in ("spec", "installed", "key", "weight", "temperature", "max tokens"):
            table.add_column(col)
        for m in models:
            table.add_row(m["spec"], "yes" if m["installed"] else "[red]no[/]", m["key"], f"{m['weight']:g}",
                          f"{m['temperature']:g}", str(m["max_tokens"]))
        console.print(table)
    else:
        console.print("no models configured: pass --llm PROVIDER:MODEL or --config FILE", highlight=False)
