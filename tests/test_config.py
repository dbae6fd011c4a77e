"""Run configuration: bad values are one-line errors; a resumed run keeps its identity."""

import pytest

from synth.config import ConfigError, RunConfig, load_config


def test_defaults_and_cascade_switch():
    cfg = RunConfig()
    assert (cfg.track, cfg.population, cfg.proxy_steps) == ("mqar", 16, 100)
    assert RunConfig(steps=80).proxy_steps == 0  # a proxy as long as the run is no proxy


def test_toml_file_and_flags(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[evolve]\ntrack = "single_ar"\npopulation = 10\nllm = ["openai:m@http://127.0.0.1:1/v1"]\n')
    cfg = load_config(path, {"population": 12, "seed": None})
    assert cfg.track == "single_ar" and cfg.population == 12 and cfg.llm == ["openai:m@http://127.0.0.1:1/v1"]


@pytest.mark.parametrize("overrides, needle", [
    ({"track": "cifar"}, "track"),
    ({"population": 4, "tournament": 9}, "tournament (9) cannot exceed population (4)"),
    ({"operator_weights": {"teleport": 1.0}}, "unknown operators ['teleport']"),
    ({"llm_rate": 2.0}, "llm_rate"),
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
    stored = RunConfig(track="single_ar", seed=3, generations=5).model_dump()
    assert load_config(None, {"generations": 9}, stored=stored).generations == 9
    with pytest.raises(ConfigError, match="created with seed=3"):
        load_config(None, {"seed": 4}, stored=stored)
