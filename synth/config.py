"""The run's configuration: one pydantic model, from CLI flags and/or a TOML file, stored in the run DB."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_OPERATOR_WEIGHTS = {
    "crossover": 2.0,
    "mutate_subtree": 2.0,
    "mutate_node": 2.0,
    "mutate_insert": 1.0,
    "mutate_shrink": 1.0,
    "perturb_constants": 3.0,
    "tune": 2.0,  # synth/tune.py: new constants for a promising structure from a seeded TPE study
}

AUDIT_EVERY = 10  # cascade: every tenth child runs in full whatever its gate says, to measure the gate

# Fields that define what a run *is*; resuming with a different value would mix two experiments.
IDENTITY_FIELDS = ("track", "seed", "population", "tournament", "elites", "steps", "seeds",
                   "operator_weights", "proxy_steps", "proxy_quantile", "robust", "tune_seeds")


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    track: Literal["random_teacher", "single_ar", "mqar"] = "mqar"
    generations: int = Field(10, ge=0, description="budget: generations x population children")
    population: int = Field(16, ge=2, description="alive candidates (aging evolution); also how far back a "
                                                  "child's view of the results ends")
    tournament: int = Field(4, ge=1)
    elites: int = Field(2, ge=0, description="best-ever candidates kept alive after they age out")
    seed: int = 0
    steps: Optional[int] = Field(None, ge=1, description="training steps per candidate (default: the track's 400)")
    seeds: Optional[list[str]] = Field(None, description="seed programs to start from (default: all)")
    operator_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_OPERATOR_WEIGHTS))
    tune_seeds: int = Field(2, ge=0, description="the first children tune each seed's constants this many "
                                                "times (synth/tune.py), before any other operator")
    max_proposal_tries: int = Field(8, ge=1, description="tries per child before giving up on a valid one")
    proxy_steps: int = Field(100, ge=0, description="fidelity cascade: the step at which a child's run is gated (0: off)")
    proxy_quantile: float = Field(0.75, ge=0.0, le=1.0,
                                  description="cascade: a child's eval metric at the gate must reach this quantile "
                                              "of the population's to go on")
    robust: int = Field(1, ge=1, description="search fitness = mean over this many seed sets (benchmark + search-K)")
    finalists: int = Field(3, ge=0, description="top candidates re-scored on held-out seeds and checked at the end")
    heldout: int = Field(3, ge=1, description="held-out seed sets per finalist")
    # where and how candidates run
    workers: Optional[int] = Field(None, ge=1)
    devices: str = "cpu"
    backend: Literal["local", "ray"] = "local"
    ray_address: Optional[str] = None
    timeout_s: Optional[float] = Field(None, gt=0)
    memory_mb: int = Field(4096, ge=64)
    # LLM edits
    llm: list[str] = Field(default_factory=list)
    llm_rate: float = Field(0.0, ge=0.0, le=1.0)
    llm_budget_usd: Optional[float] = Field(None, ge=0)
    llm_budget_tokens: Optional[int] = Field(None, ge=0)
    llm_level: Literal["program", "code", "mixed"] = "mixed"
    llm_price: Optional[tuple[float, float]] = Field(None, description="USD per million tokens (in, out) for "
                                                                        "models the price table does not know")
    prompts_dir: Optional[str] = None

    @field_validator("llm_price", mode="before")
    @classmethod
    def _price_pair(cls, value):
        """`--llm-price 0.5,2` as well as a TOML list [0.5, 2]."""
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",")]
            try:
                value = tuple(float(p) for p in parts)
            except ValueError:
                raise ValueError(f"expected IN,OUT in USD per million tokens, e.g. 0.5,2; got {value!r}") from None
            if len(value) != 2 or min(value) < 0:
                raise ValueError(f"expected two non-negative numbers IN,OUT, e.g. 0.5,2; got {parts}")
        return value

    @field_validator("prompts_dir")
    @classmethod
    def _prompts(cls, folder: Optional[str]) -> Optional[str]:
        from prompts.render import check_templates

        if folder is not None:
            check_templates(folder)  # one line naming the file and placeholder, before anything is stored
        return folder

    @field_validator("llm")
    @classmethod
    def _llm_specs(cls, specs: list[str]) -> list[str]:
        from synth.llm.spec import parse_llm_spec

        for spec in specs:
            parse_llm_spec(spec)  # a bad spec is refused before a run directory exists
        return specs

    @field_validator("devices")
    @classmethod
    def _device_names(cls, devices: str) -> str:
        """Spelled right, or refused before a run directory exists (`gpu` would crash every later resume)."""
        names = [d.strip() for d in devices.split(",") if d.strip()]
        if not names:
            raise ValueError("is empty: use 'cpu' or a list like 'cuda:0,cuda:1'")
        for name in names:
            if name != "cpu" and not (name.startswith("cuda:") and name[5:].isdigit()):
                raise ValueError(f"unknown device {name!r}: use 'cpu' or 'cuda:N' (e.g. --devices cuda:0,cuda:1)")
        if "cpu" in names and len(names) > 1:
            raise ValueError("mixes cpu and cuda devices: use 'cpu' or a list of 'cuda:N'")
        return ",".join(names)

    @field_validator("prompts_dir")
    @classmethod
    def _prompts_exist(cls, path: Optional[str]) -> Optional[str]:
        if path is not None and not Path(path).is_dir():
            raise ValueError(f"{path} is not a directory of prompt templates")
        return path

    @model_validator(mode="before")
    @classmethod
    def _proxy_shorter_than_run(cls, values: dict) -> dict:
        """A proxy as long as the run itself gates nothing: the cascade is off then."""
        if isinstance(values, dict):
            steps, proxy = values.get("steps") or 400, values.get("proxy_steps", 100)
            if isinstance(steps, int) and isinstance(proxy, int) and proxy >= steps:
                values = {**values, "proxy_steps": 0}
        return values

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        if self.tournament > self.population:
            raise ValueError(f"tournament ({self.tournament}) cannot exceed population ({self.population})")
        if self.elites >= self.population:
            raise ValueError(f"elites ({self.elites}) must be smaller than population ({self.population})")
        unknown = set(self.operator_weights) - set(DEFAULT_OPERATOR_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown operators {sorted(unknown)}: known are {sorted(DEFAULT_OPERATOR_WEIGHTS)}")
        if self.llm_budget_usd is not None and self.llm_price is None:
            from synth.llm.pricing import price_of
            from synth.llm.spec import parse_llm_spec

            unpriced = [spec.label for spec in map(parse_llm_spec, self.llm) if price_of(spec) is None]
            if unpriced:
                raise ValueError(f"a dollar budget needs a price for {', '.join(unpriced)}: pass --llm-price IN,OUT "
                                 "(USD per million tokens) or ,price_in=...,price_out=... in the --llm spec")
        return self


class ConfigError(ValueError):
    """A bad config value or file, said in one line."""


def load_config(path: Path | None, overrides: dict, stored: dict | None = None) -> RunConfig:
    """A TOML file (optional) overlaid with the flags the user actually gave.

    When resuming, `stored` (the run's own config) is the base, and a file or flag that changes
    what the run *is* (its track, seed, population...) is refused rather than silently mixed in.
    """
    values: dict = {}
    if path is not None:
        try:
            values = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
        values = values.get("evolve", values)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if stored is not None:
        if stored.get("kind") == "baseline":
            raise ConfigError("this run directory holds a synth baseline study, not an evolve run; "
                              "choose another --run-dir")
        for name in IDENTITY_FIELDS:
            if name in values and name in stored and values[name] != stored[name]:
                raise ConfigError(
                    f"this run was created with {name}={stored[name]!r}; you asked for {values[name]!r}. "
                    f"Use a new --run-dir for a different experiment")
        values = {**stored, **values}
    try:
        return RunConfig(**values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "config"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"bad config value for {where}: {message}") from None
