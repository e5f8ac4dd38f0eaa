"""core.config: the one config engine under the hub's and the host's configurations."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

from core import config as engine
from core.errors import ConfigError, WearableEdgeError


@dataclass
class Inner:
    rate_hz: float = 4.0  # a float field
    names: list[str] = field(default_factory=list)
    mode: Literal["fast", "slow"] = "fast"
    span: tuple[float, float] = (0.0, 1.0)


@dataclass
class Outer:
    seed: int = 0
    verbose: bool = False
    out: Path = Path("runs")
    maybe: int | None = None
    either: int | str = 0
    wide_first: float | int = 0.0
    narrow_first: int | float = 0
    inner: Inner = field(default_factory=Inner)
    tables: dict[str, list[str]] = field(default_factory=lambda: {"a": ["x"], "b": ["y"]})
    free: dict[str, Any] = field(default_factory=dict)


def _error(fn: Any, *args: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        fn(*args)
    assert isinstance(info.value, WearableEdgeError)
    return info.value


# -- unknown keys ---------------------------------------------------------------------------
def test_unknown_key_names_the_dotted_path_and_the_closest_known_key() -> None:
    e = _error(engine.build, Outer, {"inner": {"rate_h": 2}})
    assert e.key == "inner.rate_h"
    assert "did you mean 'rate_hz'?" in str(e)
    e = _error(engine.build, Outer, {"zzz": 1})
    assert e.key == "zzz" and "did you mean" not in str(e) and "known: " in str(e)


def test_unknown_key_did_you_mean_in_the_hub_and_the_host_configs(tmp_path: Path) -> None:
    from edge.config import load_config as load_hub
    from train.config import load_config as load_host

    hub = tmp_path / "edge.toml"
    hub.write_text("[decisions]\nema_alph = 0.5\n")
    e = _error(load_hub, hub)
    assert e.key == "decisions.ema_alph" and "did you mean 'ema_alpha'?" in str(e)
    e = _error(lambda: load_host(overrides=["data.window=30"]))
    assert e.key == "data.window" and "did you mean 'window_s'?" in str(e)


# -- one finite-number policy ------------------------------------------------------------------
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_numbers_are_refused(bad: float) -> None:
    e = _error(engine.build, Outer, {"inner": {"rate_hz": bad}})
    assert e.key == "inner.rate_hz" and "finite" in str(e)
    # free-form values too, however deep
    e = _error(engine.build, Outer, {"free": {"k": [1.0, {"deep": bad}]}})
    assert e.key == "free.k[1].deep" and "finite" in str(e)


def test_huge_int_in_free_form_value_is_kept_but_refused_for_a_float_field() -> None:
    assert engine.build(Outer, {"free": {"n": 10**400}}).free == {"n": 10**400}
    assert _error(engine.build, Outer, {"inner": {"rate_hz": 10**400}}).key == "inner.rate_hz"


def test_a_deeply_nested_free_form_value_costs_no_recursion() -> None:
    value: Any = 1.0
    for _ in range(5000):
        value = [value]
    assert engine.build(Outer, {"free": {"v": value}}).free["v"] is value


@pytest.mark.parametrize(("text", "key"), [
    ("speed = inf", "speed"),
    ("speed = nan", "speed"),
    ("[decisions]\nema_alpha = nan", "decisions.ema_alpha"),
    ("[sinks]\nretention_days = inf", "sinks.retention_days"),
    ("[sim.faults]\ndrop = inf", "sim.faults.drop"),  # a free-form table
])
def test_inf_refused_by_the_hub_config(tmp_path: Path, text: str, key: str) -> None:
    from edge.config import DaemonConfig, apply_overrides, load_config

    p = tmp_path / "edge.toml"
    p.write_text(text + "\n")
    e = _error(load_config, p)
    assert e.key == key and "finite" in str(e), str(e)
    e = _error(apply_overrides, DaemonConfig(), {"speed": math.inf})
    assert e.key == "speed" and "finite" in str(e)


@pytest.mark.parametrize(("override", "key"), [
    ("distill.hint_weight=inf", "distill.hint_weight"),  # the host used to accept this one
    ("distill.alpha=nan", "distill.alpha"),
    ("teachers.lr=-inf", "teachers.lr"),
    ("teachers.model.width=inf", "teachers.model.width"),  # a free-form table
])
def test_inf_refused_by_the_host_config(override: str, key: str) -> None:
    from train.config import load_config

    e = _error(lambda: load_config(overrides=[override]))
    assert e.key == key and "finite" in str(e)


def test_inf_refused_in_a_host_config_file(tmp_path: Path) -> None:
    from train.config import load_config

    p = tmp_path / "run.toml"
    p.write_text("[distill]\nulgm_weight = inf\n")
    assert _error(load_config, p).key == "distill.ulgm_weight"


# -- types ----------------------------------------------------------------------------------
def test_types_are_checked_and_the_error_names_the_dotted_key() -> None:
    cfg = engine.build(Outer, {"seed": 3, "out": "/tmp/x", "inner": {"rate_hz": 8, "names": ("a",),
                                                                    "mode": "slow",
                                                                    "span": [1, 2.5]}})
    assert cfg.seed == 3 and cfg.out == Path("/tmp/x")
    assert cfg.inner == Inner(rate_hz=8.0, names=["a"], mode="slow", span=(1.0, 2.5))
    assert isinstance(cfg.inner.rate_hz, float)
    for data, key in [
        ({"seed": True}, "seed"),  # a bool is not an int
        ({"seed": 1.5}, "seed"),
        ({"verbose": 1}, "verbose"),  # nor an int a bool
        ({"out": ""}, "out"),
        ({"inner": 3}, "inner"),
        ({"inner": {"names": ["a", 2]}}, "inner.names[1]"),
        ({"inner": {"mode": "medium"}}, "inner.mode"),
        ({"inner": {"span": [1.0]}}, "inner.span"),
        ({"tables": {"a": "x"}}, "tables.a"),
    ]:
        assert _error(engine.build, Outer, data).key == key, data


def test_a_union_takes_the_first_arm_that_accepts_the_value() -> None:
    assert engine.build(Outer, {"either": "3"}).either == "3"  # int refuses a str: next arm
    assert engine.build(Outer, {"either": 3}).either == 3
    wide = engine.build(Outer, {"wide_first": 3}).wide_first
    narrow = engine.build(Outer, {"narrow_first": 3}).narrow_first
    assert (wide, type(wide)) == (3.0, float)  # float | int: the float arm widens the int
    assert (narrow, type(narrow)) == (3, int)  # int | float: the int arm takes it as is
    assert engine.build(Outer, {"maybe": None}).maybe is None
    e = _error(engine.build, Outer, {"maybe": "x"})
    assert e.key == "maybe" and "int | None" in str(e)
    e = _error(engine.build, Outer, {"either": 1.5})
    assert e.key == "either"


# -- layering and overrides --------------------------------------------------------------------
def test_layers_merge_sections_key_by_key_and_replace_free_tables(tmp_path: Path) -> None:
    base, top = tmp_path / "base.toml", tmp_path / "top.toml"
    base.write_text('seed = 1\n[inner]\nrate_hz = 2.0\nnames = ["a"]\n')
    top.write_text('[inner]\nmode = "slow"\n[tables]\nc = ["z"]\n')
    cfg = engine.load(Outer, base, top)
    assert cfg.seed == 1 and cfg.inner == Inner(rate_hz=2.0, names=["a"], mode="slow")
    assert cfg.tables == {"c": ["z"]}  # a profile can drop an entry
    assert engine.load(Outer) == Outer()


def test_overrides_set_exactly_the_entry_they_name() -> None:
    cfg = Outer()
    out = engine.apply_overrides(cfg, {"inner.rate_hz": 16, "tables.c": "z", "free.a.b": 1,
                                       "seed": None, "inner.names": "only"})
    assert out.inner.rate_hz == 16.0 and out.inner.mode == "fast"
    assert out.tables == {"a": ["x"], "b": ["y"], "c": ["z"]}  # siblings kept, item -> list
    assert out.free == {"a": {"b": 1}}
    assert out.inner.names == ["only"]  # a single value for a list field
    assert out.seed == 0  # None: not given
    assert cfg == Outer()  # the input is left alone
    # a whole section as a table merges key by key, as a file layer does
    assert engine.apply_overrides(cfg, {"inner": {"mode": "slow"}}).inner == Inner(mode="slow")
    assert engine.apply_overrides(cfg, [("seed", 1), ("seed", 2)]).seed == 2  # in order


@pytest.mark.parametrize(("overrides", "key", "match"), [
    ({"inner.rate": 1}, "inner.rate", "did you mean 'rate_hz'"),
    ({"nosection.x": 1}, "nosection.x", "unknown key 'nosection'"),
    ({"seed.x": 1}, "seed.x", "not a table"),
    ({"inner..rate_hz": 1}, "inner..rate_hz", "empty part"),
    ({"inner": 1}, "inner", "expected a table"),
    ({"tables.a": [1]}, "tables.a[0]", "string"),
])
def test_bad_overrides_name_the_whole_dotted_key(overrides: dict[str, Any], key: str,
                                                 match: str) -> None:
    e = _error(engine.apply_overrides, Outer(), overrides)
    assert e.key == key and match in str(e), str(e)


def test_parse_override_reads_toml_literals_and_bare_lists() -> None:
    assert engine.parse_override("a.b=3") == ("a.b", 3)
    assert engine.parse_override(" a = [1, 2] ") == ("a", [1, 2])
    assert engine.parse_override("a=x,y") == ("a", ["x", "y"])
    assert engine.parse_override("a=true") == ("a", True)
    assert engine.parse_override("a=S17") == ("a", "S17")
    assert _error(engine.parse_override, "seed").key == "seed"
    assert _error(engine.parse_override, ".a=1").key == ".a"


# -- files and writing --------------------------------------------------------------------------
def test_file_errors_are_config_errors_keyed_config(tmp_path: Path) -> None:
    assert _error(engine.read_toml, tmp_path / "none.toml").key == "config"
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff = 1\n")
    assert "not valid TOML" in str(_error(engine.read_toml, bad))
    assert _error(engine.read_toml, tmp_path).key == "config"  # a directory


def test_dump_toml_reads_back_identically() -> None:
    cfg = engine.apply_overrides(Outer(), {"out": "/x y/z", "maybe": 4, "inner.names": ["a", 'q"'],
                                           "free.k": {"n": [1, 2.5]}, "tables.c": ["z"]})
    text = engine.dump_toml(cfg, header="a header")
    assert text.startswith("# a header\n")
    assert engine.build(Outer, tomllib.loads(text)) == cfg
    with pytest.raises(ValueError, match="non-finite"):
        engine.dump_toml({"x": math.nan})
    # TOML has no null: a None is left out, and reads back as the field's None default
    assert engine.build(Outer, tomllib.loads(engine.dump_toml(Outer()))) == Outer()


def test_require_helpers() -> None:
    engine.require_choice("a", ("a", "b"), "k")
    assert "is not one of a, b" in str(_error(engine.require_choice, "c", ("a", "b"), "k"))
    assert _error(engine.require_positive, 0, "k").key == "k"
    assert _error(engine.require_positive, math.nan, "k").key == "k"
    assert ">= 2" in str(_error(engine.require_at_least, 1, 2, "k"))
    engine.require_non_negative(0, "k")
    assert _error(engine.require_non_negative, -1e-9, "k").key == "k"
