"""train.config: TOML profiles -> dataclasses, typed overrides, RUN/config.toml round trip."""

from __future__ import annotations

import ast
import dataclasses
import tomllib
from pathlib import Path

import pytest

from core.errors import WearableEdgeError
from train.config import (
    CONFIG_DIR,
    ConfigError,
    RunConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_toml,
    load_config,
    parse_variant,
)


def test_default_toml_matches_dataclass_defaults() -> None:
    # default.toml documents the defaults; it must not silently drift from the dataclasses
    assert load_config() == RunConfig()


def test_every_default_has_a_comment() -> None:
    # the style rule: "dataclass configs with a comment per default"
    path = Path(__file__).resolve().parents[3] / "train" / "config.py"
    src = path.read_text().splitlines()
    tree = ast.parse("\n".join(src))
    checked = 0
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        if not any("dataclass" in ast.unparse(d) for d in cls.decorator_list):
            continue
        for stmt in cls.body:
            if isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                line, prev = src[stmt.lineno - 1], src[stmt.lineno - 2].strip()
                ok = "#" in line or prev.startswith("#") or "default_factory=" in line
                assert ok, f"config.py:{stmt.lineno} has no comment: {line.strip()}"
                checked += 1
    assert checked > 40


def test_quick_profile_layers_over_default() -> None:
    cfg = load_config(quick=True)
    assert cfg.cv.max_folds == 2
    assert cfg.teachers.steps < RunConfig().teachers.steps
    # every model of the default run still runs, plus the ones it leaves out for time
    default = load_config()
    assert set(default.student.variants) < set(cfg.student.variants)
    assert set(default.teachers.fusion_ablation) < set(cfg.teachers.fusion_ablation)
    assert default.student.variants == RunConfig().student.variants


def test_overrides_are_typed() -> None:
    cfg = load_config(
        overrides=[
            "seed=7",
            "distill.alpha=0.3",
            "teachers.steps=3",
            "cv.kind=forward",
            "student.variants=alone,kd_ca",
            "data.holdout_subjects=S17",
            "teachers.model.width=8",
            "report.plots=false",
            "data.window_s=30",  # an int for a float field widens
        ]
    )
    assert cfg.seed == 7
    assert cfg.distill.alpha == 0.3
    assert cfg.teachers.steps == 3
    assert cfg.cv.kind == "forward"
    assert cfg.student.variants == ["alone", "kd_ca"]
    assert cfg.data.holdout_subjects == ["S17"]
    assert cfg.teachers.model == {"width": 8}
    assert cfg.report.plots is False
    assert cfg.data.window_s == 30.0 and isinstance(cfg.data.window_s, float)


@pytest.mark.parametrize(
    ("override", "key", "match"),
    [
        ("teachers.steps=many", "teachers.steps", "integer"),
        ("teachers.steps=2.5", "teachers.steps", "integer"),
        ("distill.alpha=high", "distill.alpha", "number"),
        ("report.plots=3", "report.plots", "true/false"),
        ("teachers.step=3", "teachers.step", "unknown key"),
        ("nosection.x=1", "nosection.x", "unknown key"),
        ("seed", "seed", "key=value"),
        ("distill.alpha=1.5", "distill.alpha", r"\[0, 1\]"),
        ("cv.kind=kfold", "cv.kind", "not one of"),
        ("teachers.fusion=middle", "teachers.fusion", "not one of"),
        ("student.variants=alone,kd_foo", "student.variants[1]", "kd_foo"),
        ("deploy.variant=kd_equal_hint", "deploy.variant", "not 'best'"),
        ("teachers.steps=0", "teachers.steps", ">= 1"),
        ("seed.x=1", "seed.x", "not a table"),
    ],
)
def test_bad_overrides_name_the_key(override: str, key: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as e:
        load_config(overrides=[override])
    assert e.value.key == key
    assert isinstance(e.value, WearableEdgeError)


def test_user_file_layers_and_replaces_groups(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text('[teachers.groups]\nwrist = ["bvp", "eda"]\n\n[cv]\nkind = "forward"\n')
    cfg = load_config(f)
    assert cfg.teachers.groups == {"wrist": ["bvp", "eda"]}  # a free table is replaced whole
    assert cfg.cv.kind == "forward"
    assert cfg.cv.n_splits == RunConfig().cv.n_splits  # sections merge key by key


def test_bad_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[data]\nwindow = 30\n")
    with pytest.raises(ConfigError) as e:
        load_config(unknown)
    assert e.value.key == "data.window"


def test_dump_round_trip(tmp_path: Path) -> None:
    cfg = load_config(
        quick=True, overrides=["teachers.model.width=8", "distill.temperature=2.5", "seed=3"]
    )
    text = dump_toml(cfg, tmp_path / "config.toml")
    again = config_from_dict(tomllib.loads(text))
    assert again == cfg
    assert config_to_dict(again) == dataclasses.asdict(cfg)
    assert (tmp_path / "config.toml").read_text() == text


def test_variant_grammar() -> None:
    v = parse_variant("kd_ca_ulgm")
    assert (v.weighting, v.ulgm, v.hint) == ("confidence", True, False)
    v = parse_variant("kd_equal_hint_ulgm")
    assert (v.weighting, v.ulgm, v.hint) == ("equal", True, True)
    assert parse_variant("alone").weighting is None
    with pytest.raises(ConfigError, match="hints need a teacher"):
        parse_variant("alone_hint")
    with pytest.raises(ConfigError):
        parse_variant("kd_ca_ulgm_ulgm")


def test_apply_overrides_does_not_mutate_input() -> None:
    base = {"distill": {"alpha": 0.5}}
    out = apply_overrides(base, ["distill.alpha=0.2"])
    assert base == {"distill": {"alpha": 0.5}}
    assert out["distill"]["alpha"] == 0.2


def test_shipped_profiles_exist() -> None:
    assert (CONFIG_DIR / "default.toml").is_file()
    assert (CONFIG_DIR / "quick.toml").is_file()
