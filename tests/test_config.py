"""Run configuration: nested and frozen, bad values are one-line errors, operator weights merge with the
defaults, and the command that created a run resumes it (resolved values are compared, not raw input)."""

import pydantic
import pytest

from synth.config import FLAT, ConfigError, RunConfig, load_config
from synth.search.operators import GENETIC_WEIGHTS
from tests.conftest import synth_cli


def test_defaults_sections_and_cascade_switch():
    cfg = RunConfig()
    assert (cfg.track, cfg.steps, cfg.search.population, cfg.cascade.proxy_steps) == ("mqar", 400, 16, 100)
    assert RunConfig(steps=80).cascade.proxy_steps == 0  # a proxy as long as the run is no proxy
    assert RunConfig(population=8, llm_rate=0.5).search.population == 8  # flat names find their section
    assert RunConfig(search={"population": 8}).search.population == 8
    with pytest.raises(pydantic.ValidationError):
        cfg.search.population = 3  # frozen


def test_flat_view_round_trips():
    cfg = RunConfig(track="single_ar", population=8, llm_rate=0.25, audit_every=5, finalists=1)
    flat = cfg.flat()
    assert set(flat) == set(FLAT) | {"track", "tracks", "steps"}
    assert RunConfig(**flat) == cfg


def test_toml_file_and_flags(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[evolve]\ntrack = "single_ar"\npopulation = 10\nllm = ["openai:m@http://127.0.0.1:1/v1"]\n')
    cfg = load_config(path, {"population": 12, "seed": None})
    assert cfg.track == "single_ar" and cfg.search.population == 12
    assert cfg.llm.models == ["openai:m@http://127.0.0.1:1/v1"]


def test_one_operator_weight_merges_with_the_defaults(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[operator_weights]\ncrossover = 5\n')
    weights = load_config(path, {}).search.operator_weights
    assert weights == {**GENETIC_WEIGHTS, "crossover": 5.0}  # the others stay on


@pytest.mark.parametrize("overrides, needle", [
    ({"track": "cifar"}, "track"),
    ({"population": 4, "tournament": 9}, "tournament (9) cannot exceed population (4)"),
    ({"operator_weights": {"teleport": 1.0}}, "unknown operators ['teleport']"),
    ({"operator_weights": {name: 0 for name in GENETIC_WEIGHTS}}, "every genetic operator has weight 0"),
    ({"operator_weights": {"crossover": -1}}, "negative weight for ['crossover']"),
    ({"llm_rate": 2.0}, "bad config value for llm_rate"),
])
def test_bad_values_are_one_line(overrides, needle):
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_bad_file(tmp_path):
    (tmp_path / "bad.toml").write_text("track = [unclosed")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(tmp_path / "bad.toml", {})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", {})


def test_resume_keeps_identity_but_allows_more_generations():
    stored = RunConfig(track="single_ar", seed=3, generations=5).flat()
    assert load_config(None, {"generations": 9}, stored=stored).search.generations == 9
    with pytest.raises(ConfigError, match="created with seed=3"):
        load_config(None, {"seed": 4}, stored=stored)
    with pytest.raises(ConfigError, match="created with steps=400"):
        load_config(None, {"steps": 200}, stored=stored)


def test_the_same_command_resumes():
    """Explicit defaults restate the run; a proxy resolved away by a short run is the same proxy."""
    stored = RunConfig().flat()
    cfg = load_config(None, {"track": "mqar", "generations": 50, "steps": 400}, stored=stored)
    assert cfg.steps == 400 and cfg.search.generations == 50
    short = RunConfig(steps=80, proxy_steps=100, operator_weights={"crossover": 4}).flat()
    again = load_config(None, {"steps": 80, "proxy_steps": 100, "operator_weights": {"crossover": 4}}, stored=short)
    assert again.cascade.proxy_steps == 0 and again.search.operator_weights["crossover"] == 4


def test_an_old_flat_config_still_resumes():
    """A run directory from before the sections: unresolved steps, no newer keys."""
    old = {"track": "single_ar", "generations": 3, "population": 8, "tournament": 4, "elites": 2, "seed": 0,
           "steps": None, "seeds": None, "operator_weights": dict(GENETIC_WEIGHTS), "tune_seeds": 2,
           "max_proposal_tries": 8, "proxy_steps": 100, "proxy_quantile": 0.75, "robust": 1, "finalists": 3,
           "heldout": 3, "workers": None, "devices": "cpu", "backend": "local", "ray_address": None,
           "timeout_s": None, "memory_mb": 4096, "llm": [], "llm_rate": 0.0, "llm_budget_usd": None,
           "llm_budget_tokens": None, "llm_level": "mixed", "llm_price": None, "prompts_dir": None}
    cfg = load_config(None, {"steps": 400, "generations": 4}, stored=old)
    assert (cfg.track, cfg.steps, cfg.search.generations, cfg.cascade.proxy_steps) == ("single_ar", 400, 4, 100)
    assert (cfg.search.max_height, cfg.search.max_nodes) == (8, 48)  # newer keys: their defaults
    assert (cfg.trust.heldout_accuracy_slack, cfg.trust.heldout_mse_factor, cfg.trust.noise_seed) == (0.1, 10.0, 12345)


def test_bloat_limits_and_trust_thresholds_are_configured_stored_and_part_of_the_run(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("max_height = 6\n[trust]\nheldout_accuracy_slack = 0.05\nnoise_seed = 7\n")
    cfg = load_config(path, {})
    assert (cfg.search.max_height, cfg.search.max_nodes) == (6, 48)
    assert (cfg.trust.heldout_accuracy_slack, cfg.trust.noise_seed) == (0.05, 7)
    stored = cfg.flat()
    assert (stored["max_height"], stored["heldout_accuracy_slack"], stored["noise_seed"]) == (6, 0.05, 7)
    assert load_config(path, {}, stored=stored) == cfg  # the same command resumes
    with pytest.raises(ConfigError, match="created with max_height=6"):
        load_config(None, {"max_height": 9}, stored=stored)  # another search space is another experiment
    with pytest.raises(ConfigError, match="heldout_mse_factor"):
        load_config(None, {"heldout_mse_factor": 0.5})


def test_cli_all_zero_weights_exit_2_before_the_run(tmp_path):
    path = tmp_path / "zero.toml"
    path.write_text("[operator_weights]\n" + "".join(f"{name} = 0\n" for name in GENETIC_WEIGHTS))
    run_dir = tmp_path / "run"
    proc = synth_cli("evolve", "--config", str(path), "--run-dir", str(run_dir), "--quiet")
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "every genetic operator has weight 0" in lines[0]
    assert not (run_dir / "synth.db").exists()


def test_cli_the_same_command_resumes(tmp_path):
    """A TOML whose proxy is resolved away (not shorter than the run), then the same command with the
    track's defaults spelled out: the run resumes instead of being refused."""
    path = tmp_path / "run.toml"
    path.write_text('track = "single_ar"\nseeds = ["sgd_momentum"]\ngenerations = 0\nsteps = 40\n'
                    'proxy_steps = 40\nfinalists = 0\n[operator_weights]\ncrossover = 3\n')
    command = ("evolve", "--config", str(path), "--run-dir", str(tmp_path / "run"), "--quiet", "--workers", "1")
    first = synth_cli(*command)
    assert first.returncode == 0, first.stderr
    again = synth_cli(*command, "--steps", "40", "--population", "16", "--seed", "0")
    assert again.returncode == 0, again.stderr
    assert "resuming run" in again.stdout
    other = synth_cli(*command, "--steps", "60")
    assert other.returncode == 2 and "created with steps=40" in other.stderr
