"""benchmarks.mutation: counting mutmut's verdicts, equivalents, the score and the report."""

from __future__ import annotations

import tomllib

from benchmarks.mutation import (
    MODULES,
    REPO,
    _mutmut_config,
    apply_equivalents,
    render,
    summarize,
)


def test_every_module_and_its_tests_exist() -> None:
    for target in MODULES.values():
        for f in (*target.files, *target.tests):
            assert (REPO / f).is_file(), f


def test_summary_counts_each_verdict_and_scores_without_equivalents() -> None:
    codes = {"m.a__mutmut_1": 1, "m.a__mutmut_2": 3, "m.a__mutmut_3": 0, "m.a__mutmut_4": 36,
             "m.a__mutmut_5": 33, "m.a__mutmut_6": 0, "m.a__mutmut_7": None}
    row = summarize("m", codes, equivalent={"m.a__mutmut_6": "same behaviour", "gone": "x"})
    assert (row["made"], row["killed"], row["timed_out"], row["survived"]) == (7, 2, 1, 2)
    assert row["not_checked"] == 1
    assert row["equivalent"] == [{"mutant": "m.a__mutmut_6", "reason": "same behaviour"}]
    # killed + timed out over the 6 non-equivalent mutants; one not tested counts against
    assert row["score"] == round(3 / 6, 4)
    assert row["survivors"] == ["m.a__mutmut_3", "m.a__mutmut_5", "m.a__mutmut_7"]


def test_equivalents_read_after_a_run_move_out_of_the_survivors() -> None:
    row = summarize("m", {"m.b__mutmut_1": 1, "m.b__mutmut_2": 0, "m.b__mutmut_3": 0},
                    equivalent={})
    row["survivor_diffs"] = {"m.b__mutmut_2": "-a\n+b", "m.b__mutmut_3": "-c\n+d"}
    row["wall_s"], row["files"] = 1.0, ["m.py"]
    assert row["score"] == round(1 / 3, 4)
    from benchmarks import mutation

    mutation.EQUIVALENT["m.b__mutmut_3"] = "reason"
    try:
        out = apply_equivalents(row)
    finally:
        del mutation.EQUIVALENT["m.b__mutmut_3"]
    assert out["survivors"] == ["m.b__mutmut_2"] and out["survived"] == 1
    assert out["score"] == 0.5 and list(out["survivor_diffs"]) == ["m.b__mutmut_2"]
    md = render({"command": "edge-bench mutation", "mutmut": "3", "machine": "x", "wall_s": 60.0,
                 "modules": [out]})
    assert "| m | m.py | 3 | 1 | 1 | 0 | 1 | 50.0% |" in md
    assert "equivalent `m.b__mutmut_3`: reason" in md and "+b" in md


def test_the_mutmut_config_is_toml_and_selects_only_the_module() -> None:
    target = MODULES["framing"]
    doc = tomllib.loads((REPO / "pyproject.toml").read_text() + _mutmut_config(target))
    cfg = doc["tool"]["mutmut"]
    assert cfg["source_paths"] == ["firmware_bridge"]
    assert cfg["only_mutate"] == list(target.files)
    assert cfg["pytest_add_cli_args_test_selection"] == list(target.tests)
    assert "firmware_bridge" not in cfg["also_copy"] and "tests" in cfg["also_copy"]


def test_a_stopped_run_scores_only_the_mutants_it_ran() -> None:
    codes = {"m.c__mutmut_1": 1, "m.c__mutmut_2": 0, "m.c__mutmut_3": None, "m.c__mutmut_4": None}
    row = summarize("m", codes, equivalent={}, stopped=True)
    assert (row["made"], row["not_run"], row["not_checked"]) == (4, 2, 0)
    assert row["score"] == 0.5 and row["survivors"] == ["m.c__mutmut_2"]
    row.update(wall_s=1.0, files=["m.py"], killed_by_new_tests=["m.c__mutmut_2"])
    out = apply_equivalents(row)
    assert out["score"] == 0.5 and out["score_with_new_tests"] == 1.0
    md = render({"command": "c", "mutmut": "3", "machine": "x", "wall_s": 60.0, "modules": [out]})
    assert "stopped after 2 of 4 mutants" in md and "| 50.0% | 100.0% |" in md
