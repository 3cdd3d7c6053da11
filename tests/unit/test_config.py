"""Tier configuration: published prices, resolution order, errors that name field and fix."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tierflow.config import BUILTIN_PROFILES, default_profile, load_config
from tierflow.errors import ConfigError, TierflowError
from tierflow.models import endpoints_of

pytestmark = pytest.mark.usefixtures("isolated_env")

LOCAL_TIER = """
[profiles.{name}]
ladder = ["small", "big"]

[profiles.{name}.tiers.small]
model = "s"
base_url = "http://127.0.0.1:9001/v1"
price = {{ input = 1.0, cached_input = 0.1, output = 2.0 }}

[profiles.{name}.tiers.big]
model = "b"
base_url = "http://127.0.0.1:9002/v1"
price = {{ input = 3.0, cached_input = 0.3, output = 6.0 }}
"""


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tierflow.toml"
    path.write_text(text)
    return path


def test_openai_profile_has_the_published_prices() -> None:
    cfg = load_config("openai", require_keys=False)

    prices = {
        n: (t.price.input, t.price.cached_input, t.price.output) for n, t in cfg.tiers.items()
    }

    assert prices == {
        "flagship": (2.50, 0.25, 15.00),
        "mini": (0.75, 0.075, 4.50),
        "nano": (0.20, 0.02, 1.25),
    }
    assert cfg.tier("flagship").model == "gpt-5.4"
    assert cfg.ladder == ("nano", "mini", "flagship")


def test_ladder_navigation_and_shared_models() -> None:
    cfg = load_config("local")

    assert cfg.flagship == "flagship"
    assert [cfg.next_tier(t) for t in cfg.ladder] == ["mini", "flagship", None]
    assert [cfg.cheaper_tier(t) for t in cfg.ladder] == [None, "nano", "mini"]
    assert cfg.shared_models == {"qwen2.5-coder-0.5b-instruct": ["nano", "mini"]}
    assert all(t.tool_mode == "forced" and t.is_local for t in cfg.tiers.values())


def test_unknown_tier_lists_the_known_ones() -> None:
    cfg = load_config("openai", require_keys=False)

    with pytest.raises(ConfigError) as info:
        cfg.tier("huge")

    assert info.value.field == "tiers.huge"
    assert "unknown tier" in str(info.value)
    assert "use one of nano, mini, flagship" in str(info.value)
    assert isinstance(info.value, TierflowError)


def test_missing_price_field_names_the_field(tmp_path: Path) -> None:
    text = LOCAL_TIER.format(name="p").replace("cached_input = 0.1, ", "")
    path = write_toml(tmp_path, text)

    with pytest.raises(ConfigError) as info:
        load_config("p", config_file=path)

    assert info.value.field == "tiers.small.price.cached_input"
    assert info.value.fix == "add this field"
    assert "config field 'tiers.small.price.cached_input'" in str(info.value)


def test_negative_price_is_rejected() -> None:
    overrides = {"tiers": {"mini": {"price": {"output": -4.5}}}}

    with pytest.raises(ConfigError) as info:
        load_config("openai", overrides=overrides, require_keys=False)

    assert info.value.field == "tiers.mini.price.output"
    assert "use a number >= 0" in str(info.value)


def test_malformed_url_shows_the_expected_form() -> None:
    overrides = {"tiers": {"nano": {"base_url": "127.0.0.1:8733"}}}

    with pytest.raises(ConfigError) as info:
        load_config("local", overrides=overrides)

    assert info.value.field == "tiers.nano.base_url"
    assert "'127.0.0.1:8733' is not an http(s) URL" in str(info.value)
    assert "http://127.0.0.1:8080/v1" in str(info.value)


def test_remote_endpoint_without_key_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    with pytest.raises(ConfigError) as info:
        load_config("openai")

    assert info.value.field.endswith(".api_key_env")
    assert "OPENAI_API_KEY is not set" in str(info.value)
    assert "export OPENAI_API_KEY=" in info.value.fix
    assert "--profile local" in info.value.fix


def test_remote_endpoint_with_key_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")

    cfg = load_config("openai")

    assert cfg.tier("mini").api_key() == "sk-test"
    assert not cfg.tier("mini").is_local


def test_remote_endpoint_without_key_variable(tmp_path: Path) -> None:
    text = LOCAL_TIER.format(name="r").replace(
        "http://127.0.0.1:9002/v1", "https://api.example.com/v1"
    )
    path = write_toml(tmp_path, text)

    with pytest.raises(ConfigError) as info:
        load_config("r", config_file=path)

    assert info.value.field == "tiers.big.api_key_env"
    assert "https://api.example.com/v1 has no API-key variable" in str(info.value)
    assert "set api_key_env" in info.value.fix
    assert load_config("r", config_file=path, require_keys=False).tier("big").model == "b"


def test_fallback_endpoint_inherits_the_tier_key_variable(tmp_path: Path) -> None:
    text = LOCAL_TIER.format(name="f") + (
        '\n[[profiles.f.tiers.small.fallbacks]]\nbase_url = "https://backup.example.com/v1"\n'
    )
    path = write_toml(
        tmp_path, text.replace('model = "s"', 'model = "s"\napi_key_env = "BACKUP_KEY"')
    )

    with pytest.raises(ConfigError) as info:
        load_config("f", config_file=path)

    assert info.value.field == "tiers.small.fallbacks[0].api_key_env"
    assert "BACKUP_KEY is not set" in str(info.value)
    tier = load_config("f", config_file=path, require_keys=False).tier("small")
    assert [e.base_url for e in endpoints_of(tier)] == [
        "http://127.0.0.1:9001/v1",
        "https://backup.example.com/v1",
    ]


def test_unknown_profile_lists_profiles_and_how_to_declare() -> None:
    with pytest.raises(ConfigError) as info:
        load_config("nope")

    assert info.value.field == "profile"
    assert "unknown profile 'nope'" in str(info.value)
    for name in BUILTIN_PROFILES:
        assert name in info.value.fix
    assert "[profiles.nope]" in info.value.fix


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "[profiles.x\nladder = [\n")

    with pytest.raises(ConfigError) as info:
        load_config("local", config_file=path)

    assert info.value.field == str(path)
    assert "invalid TOML" in str(info.value)
    assert "fix the syntax" in info.value.fix


def test_missing_config_file() -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_config("local", config_file="no/such/tierflow.toml")

    assert info.value.field == "config"


def test_misspelt_field_is_named(tmp_path: Path) -> None:
    path = write_toml(tmp_path, LOCAL_TIER.format(name="s") + "timeout_sec = 5\n")

    with pytest.raises(ConfigError) as info:
        load_config("s", config_file=path)

    assert info.value.field == "tiers.big.timeout_sec"
    assert info.value.fix == "remove it or check its spelling"


def test_ladder_must_name_declared_tiers(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path, LOCAL_TIER.format(name="l").replace('"small", "big"', '"small", "huge"')
    )

    with pytest.raises(ConfigError, match="ladder names tier 'huge'"):
        load_config("l", config_file=path)


def test_env_override_of_one_tier_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERFLOW_TIERS__MINI__TIMEOUT_S", "30")

    cfg = load_config("local")

    assert cfg.tier("mini").timeout_s == 30.0
    assert cfg.tier("nano").timeout_s == 180.0


def test_invalid_env_override_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERFLOW_TIERS__MINI__TIMEOUT_S", "0")

    with pytest.raises(ConfigError) as info:
        load_config("local")

    assert info.value.field == "tiers.mini.timeout_s"
    assert info.value.fix == "use a number > 0"


def test_resolution_order_builtin_file_env_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_toml(
        tmp_path,
        "[profiles.local.tiers.mini]\ntimeout_s = 11\nmax_retries = 4\n"
        "[profiles.local.tiers.nano]\ntimeout_s = 12\n",
    )
    monkeypatch.setenv("TIERFLOW_TIERS__MINI__TIMEOUT_S", "22")

    cfg = load_config("local", config_file=path, overrides={"tiers": {"nano": {"timeout_s": 33}}})

    assert cfg.tier("mini").timeout_s == 22.0  # env beats file
    assert cfg.tier("mini").max_retries == 4  # file beats built-in
    assert cfg.tier("nano").timeout_s == 33.0  # per-run override beats file
    assert cfg.tier("flagship").timeout_s == 300.0  # built-in


def test_tierflow_toml_in_working_directory_is_read(isolated_env: Path) -> None:
    (isolated_env / "tierflow.toml").write_text(LOCAL_TIER.format(name="cwd"))

    cfg = load_config("cwd")

    assert cfg.ladder == ("small", "big")
    assert cfg.tier("big").price.output == 6.0


def test_profile_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERFLOW_PROFILE", "openai")

    assert load_config(require_keys=False).profile == "openai"


def test_default_profile_follows_the_openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_profile() == "local"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert default_profile() == "openai"


def test_config_is_immutable() -> None:
    cfg = load_config("local")

    with pytest.raises(ValueError, match="frozen"):
        cfg.tier("mini").timeout_s = 1.0  # type: ignore[misc]


def test_overrides_are_not_mutated() -> None:
    overrides = {
        "tiers": {
            "extra": {
                "model": "m",
                "base_url": "http://127.0.0.1:9/v1",
                "price": {"input": 0, "cached_input": 0, "output": 0},
            }
        }
    }
    before = copy.deepcopy(overrides)

    load_config("local", overrides=overrides)

    assert overrides == before


def test_models_for_some_tiers_only_is_an_error_naming_the_others() -> None:
    from tierflow.errors import ConfigError
    from tierflow.runtime import RunContext, engine_for
    from tierflow.testing import ScriptedChatModel

    ctx = RunContext(profile="openai", models={"nano": ScriptedChatModel(script=[], label="n")})
    with pytest.raises(ConfigError, match="not for mini, flagship of profile 'openai'"):
        engine_for(ctx)
