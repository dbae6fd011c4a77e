"""The run's configuration: one nested, frozen pydantic model, built from flat CLI flags and/or a TOML
file, stored (flat, with every value resolved) in the run database.

Sections: `search` (what the evolution does), `cascade` (the fidelity gate), `execution` (where
candidates run), `llm` (the LLM operators) and `trust` (the finalists' checks). Users speak flat
names (`--population`, `proxy_steps = 50`); `FLAT` says which section each one lives in, so a flat
dict, a TOML with `[search]`-style tables, and an old run's stored config all build the same model.

Resolved values are what a run *is*: `steps` is the track's length when not given, the cascade is
off when its step is not shorter than the run, operator weights are the defaults merged with the
ones given. A resume compares resolved values, so the command that created a run resumes it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synth.search.operators import GENETIC_WEIGHTS, LLM_WEIGHTS
from synth.genetic.variation import DEFAULT_LIMITS, BloatLimits


def full_steps(track: str, steps: Optional[int]) -> int:
    """The training steps of a full run: the ones asked for, else the track's length."""
    from evaluator.tracks import get_track

    return steps or get_track(track).max_steps


CHEAP_FIRST = ("single_ar", "mqar", "random_teacher")  # the order a multi-track run scores in (random_teacher
# takes minutes per run on CPU, the recall tracks seconds)


def track_list(text: str) -> list[str]:
    """`--track single_ar,mqar`: the names as written (checked by `RunConfig.tracks`)."""
    return [name.strip() for name in text.split(",")]


def gated_step(proxy_steps: int, steps: int) -> int:
    """The cascade's step, or 0 (off) when it is not shorter than the run: such a gate gates nothing."""
    return proxy_steps if proxy_steps < steps else 0


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def merged_weights(given: Optional[dict], defaults: dict[str, float], kind: str) -> dict[str, float]:
    """The defaults with `given` laid over them (one entry changes one operator, never turns the others
    off), checked: known names, no negative weight, at least one positive."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(f"unknown operators {unknown}: known are {sorted(defaults)}")
    weights = {**defaults, **{name: float(w) for name, w in given.items()}}
    negative = sorted(name for name, w in weights.items() if w < 0)
    if negative:
        raise ValueError(f"negative weight for {negative}: weights are relative frequencies, 0 or more")
    if not any(w > 0 for w in weights.values()):
        raise ValueError(f"every {kind} operator has weight 0: give at least one a positive weight")
    return weights


class SearchConfig(Section):
    generations: int = Field(10, ge=0, description="budget: generations x population children")
    population: int = Field(16, ge=2, description="alive candidates (aging evolution); also how far back a "
                                                  "child's view of the results ends")
    tournament: int = Field(4, ge=1)
    elites: int = Field(2, ge=0, description="best-ever candidates kept alive after they age out")
    seed: int = 0
    seeds: Optional[list[str]] = Field(None, description="seed programs to start from (default: all)")
    operator_weights: dict[str, float] = Field(default_factory=lambda: dict(GENETIC_WEIGHTS))
    tune_seeds: int = Field(2, ge=0, description="the first children tune each seed's constants this many "
                                                "times (synth/genetic/tune.py), before any other operator")
    tune_trials: int = Field(8, ge=1, description="tune trials per structure, then perturb_constants instead")
    tune_startup: int = Field(3, ge=0, description="random tune trials around a root before TPE models them")
    max_proposal_tries: int = Field(8, ge=1, description="tries per child before giving up on a valid one")
    max_height: int = Field(DEFAULT_LIMITS.max_height, ge=1, description="bloat limit: a child's tree height")
    max_nodes: int = Field(DEFAULT_LIMITS.max_nodes, ge=1, description="bloat limit: nodes in one of a child's trees")

    @field_validator("operator_weights", mode="before")
    @classmethod
    def _merge(cls, given):
        return merged_weights(given, GENETIC_WEIGHTS, "genetic")

    @property
    def bloat_limits(self) -> BloatLimits:
        return BloatLimits(self.max_height, self.max_nodes)


class CascadeConfig(Section):
    proxy_steps: int = Field(100, ge=0, description="the step at which a child's run is gated (0: off)")
    proxy_quantile: float = Field(0.75, ge=0.0, le=1.0,
                                  description="a child's eval metric at the gate must reach this quantile "
                                              "of the population's to go on")
    audit_every: int = Field(10, ge=1, description="every Nth child runs in full whatever its gate says, "
                                                   "to measure the gate")
    robust: int = Field(1, ge=1, description="search fitness = mean over this many seed sets (benchmark + search-K)")


class ExecutionConfig(Section):
    workers: Optional[int] = Field(None, ge=1)
    devices: str = "cpu"
    backend: Literal["local", "ray"] = "local"
    ray_address: Optional[str] = None
    timeout_s: Optional[float] = Field(None, gt=0)
    memory_mb: int = Field(4096, ge=64)

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


class LLMConfig(Section):
    models: list[str] = Field(default_factory=list, description="--llm specs; more than one is an ensemble")
    rate: float = Field(0.0, ge=0.0, le=1.0, description="share of children made by LLM operators")
    budget_usd: Optional[float] = Field(None, ge=0)
    budget_tokens: Optional[int] = Field(None, ge=0)
    level: Literal["program", "code", "mixed"] = "mixed"
    price: Optional[tuple[float, float]] = Field(None, description="USD per million tokens (in, out) for "
                                                                   "models the price table does not know")
    prompts_dir: Optional[str] = None
    operator_weights: dict[str, float] = Field(default_factory=lambda: dict(LLM_WEIGHTS))
    attempts_shown: int = Field(8, ge=0, description="earlier children on the parent's lineage shown in a prompt")

    @field_validator("operator_weights", mode="before")
    @classmethod
    def _merge(cls, given):
        return merged_weights(given, LLM_WEIGHTS, "LLM")

    @field_validator("price", mode="before")
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

    @field_validator("models")
    @classmethod
    def _llm_specs(cls, specs: list[str]) -> list[str]:
        from synth.llm.spec import parse_llm_spec

        for spec in specs:
            parse_llm_spec(spec)  # a bad spec is refused before a run directory exists
        return specs

    @model_validator(mode="after")
    def _priced(self) -> "LLMConfig":
        if self.budget_usd is not None and self.price is None:
            from synth.llm.pricing import price_of
            from synth.llm.spec import parse_llm_spec

            unpriced = [spec.label for spec in map(parse_llm_spec, self.models) if price_of(spec) is None]
            if unpriced:
                raise ValueError(f"a dollar budget needs a price for {', '.join(unpriced)}: pass --llm-price IN,OUT "
                                 "(USD per million tokens) or ,price_in=...,price_out=... in the --llm spec")
        return self


class TrustConfig(Section):
    finalists: int = Field(3, ge=0, description="top candidates re-scored on held-out seeds and checked at the end")
    heldout: int = Field(3, ge=1, description="held-out seed sets per finalist")
    heldout_accuracy_slack: float = Field(0.10, ge=0.0, description="held-out (and permuted-task) accuracy may "
                                                                    "trail the search accuracy by this much")
    heldout_mse_factor: float = Field(10.0, ge=1.0, description="held-out (and other-teacher) MSE may exceed the "
                                                                "search MSE by this factor: teachers differ")
    noise_seed: int = Field(12345, description="seed of the noise gradients of the gradient-dependence check")


SECTIONS = {"search": SearchConfig, "cascade": CascadeConfig, "execution": ExecutionConfig, "llm": LLMConfig,
            "trust": TrustConfig}
# Flat names (CLI flags, flat TOML keys, stored configs) -> (section, field). The LLM section drops its prefix.
FLAT: dict[str, tuple[str, str]] = {
    name: (section, name.removeprefix("llm_") if section == "llm" else name)
    for section, model in SECTIONS.items()
    for name in ([f"llm_{f}" if f not in ("prompts_dir",) else f for f in model.model_fields] if section == "llm"
                 else model.model_fields)
}
FLAT["llm"] = FLAT.pop("llm_models")

AUDIT_EVERY = CascadeConfig.model_fields["audit_every"].default  # for reports of runs that predate `audit_every`

# What a run *is*; resuming with a different resolved value would mix two experiments.
IDENTITY_FIELDS = ("track", "steps", "seed", "population", "tournament", "elites", "seeds", "operator_weights",
                   "tune_seeds", "tune_trials", "tune_startup", "max_height", "max_nodes", "proxy_steps",
                   "proxy_quantile", "audit_every", "robust", "tracks")


class RunConfig(Section):
    tracks: Optional[list[str]] = Field(None, description="every track a candidate is scored on, cheap first "
                                                          "(resolved: [track]); `--track a,b` sets it")
    track: Literal["random_teacher", "single_ar", "mqar"] = "mqar"  # the first of `tracks`
    steps: Optional[int] = Field(None, ge=1, description="training steps per candidate (resolved: the track's length)")
    search: SearchConfig = SearchConfig()
    cascade: CascadeConfig = CascadeConfig()
    execution: ExecutionConfig = ExecutionConfig()
    llm: LLMConfig = LLMConfig()
    trust: TrustConfig = TrustConfig()

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, values):
        """Flat names go to their section; `[search]`-style tables are taken as they are."""
        if not isinstance(values, dict):
            return values
        nested: dict = {k: (dict(v) if k in SECTIONS else v) for k, v in values.items()
                        if k not in FLAT or (k in SECTIONS and isinstance(v, dict))}
        for name, value in values.items():
            if name in FLAT and not (name in SECTIONS and isinstance(value, dict)):
                section, field = FLAT[name]
                nested.setdefault(section, {})[field] = value
        if isinstance(nested.get("track"), str) and "," in nested["track"]:
            nested["tracks"] = track_list(nested["track"])
            nested["track"] = nested["tracks"][0]
        return nested

    @field_validator("tracks")
    @classmethod
    def _known_tracks(cls, names: Optional[list[str]]) -> Optional[list[str]]:
        """Known names, each once, in the order they are scored (cheap first)."""
        if names is None:
            return None
        for name in names:
            if name not in CHEAP_FIRST:
                raise ValueError(f"unknown track {name!r}: choose from {', '.join(CHEAP_FIRST)}"
                                 if name else "an empty name in the track list: write e.g. single_ar,mqar")
            if names.count(name) > 1:
                raise ValueError(f"track {name!r} is listed twice")
        return [name for name in CHEAP_FIRST if name in names]

    @model_validator(mode="after")
    def _resolve(self) -> "RunConfig":
        """Resolved values: the track's steps; a proxy as long as the run gates nothing (the cascade is off)."""
        object.__setattr__(self, "tracks", list(self.tracks or [self.track]))
        object.__setattr__(self, "track", self.tracks[0])
        object.__setattr__(self, "steps", full_steps(self.track, self.steps))
        if gated_step(self.cascade.proxy_steps, self.steps) != self.cascade.proxy_steps:
            object.__setattr__(self, "cascade", self.cascade.model_copy(update={"proxy_steps": 0}))
        search = self.search
        if search.tournament > search.population:
            raise ValueError(f"tournament ({search.tournament}) cannot exceed population ({search.population})")
        if search.elites >= search.population:
            raise ValueError(f"elites ({search.elites}) must be smaller than population ({search.population})")
        return self

    def flat(self) -> dict:
        """Every resolved value under its flat name: what the run database stores and `show` reads."""
        values = {"track": self.track, "tracks": list(self.tracks), "steps": self.steps}
        for name, (section, field) in FLAT.items():
            value = getattr(getattr(self, section), field)
            values[name] = list(value) if isinstance(value, tuple) else value
        return values


class ConfigError(ValueError):
    """A bad config value or file, said in one line."""


def read_toml(path: Path) -> dict:
    try:
        values = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    return values.get("evolve", values)


def build(values: dict) -> RunConfig:
    """A RunConfig, or a ConfigError in one line."""
    try:
        return RunConfig(**values)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(str(p) for p in first["loc"] if not isinstance(p, int))
        flat_name = {place: name for name, place in FLAT.items()}.get(loc[:2])  # the name the user wrote
        where = ".".join((flat_name, *loc[2:]) if flat_name else loc) or "config"
        where = "track" if where == "tracks" else where  # the user wrote --track a,b
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"bad config value for {where}: {message}") from None


def load_config(path: Path | None, overrides: dict, stored: dict | None = None) -> RunConfig:
    """A TOML file (optional) overlaid with the flags the user actually gave.

    When resuming, `stored` (the run's own config; flat, possibly from an older version) is the base,
    and a file or flag whose *resolved* value changes what the run is (its track, seed, population...)
    is refused rather than silently mixed in; one that only restates it (`--steps 400` on a run made
    with the default) is accepted.
    """
    values: dict = read_toml(path) if path is not None else {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if stored is None:
        return build(values)
    if stored.get("kind") == "baseline":
        raise ConfigError("this run directory holds a synth baseline study, not an evolve run; "
                          "choose another --run-dir")
    before = build(stored).flat()
    given = _flatten(values)
    if "track" in given and "tracks" not in given:  # `--track mqar` names the whole list
        given["tracks"] = None
    after = build({**before, **given})
    resolved = after.flat()
    for name in IDENTITY_FIELDS:
        if resolved[name] != before[name]:
            raise ConfigError(
                f"this run was created with {name}={before[name]!r}; you asked for {resolved[name]!r}. "
                f"Use a new --run-dir for a different experiment")
    return after


def _flatten(values: dict) -> dict:
    """Section tables (`[search] population = 8`) as flat names, for laying over a stored flat config."""
    flat = {k: v for k, v in values.items() if k not in SECTIONS or not isinstance(v, dict)}
    by_field = {(section, field): name for name, (section, field) in FLAT.items()}
    for section in SECTIONS:
        if isinstance(values.get(section), dict):
            for field, value in values[section].items():
                flat[by_field.get((section, field), f"{section}.{field}")] = value
    return flat
