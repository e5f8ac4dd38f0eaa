"""pyproject.toml: an install prints no setuptools deprecation banner about the licence, and
the hub's install stays free of torch and onnx."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_licence_is_an_spdx_string_that_setuptools_reads_without_a_banner() -> None:
    doc = tomllib.loads(PYPROJECT.read_text())
    project = doc["project"]
    # a table ({text = ...}) or a "License ::" classifier makes setuptools >= 77 print a
    # deprecation banner on every install; an SPDX string needs setuptools >= 77
    assert isinstance(project["license"], str) and re.fullmatch(r"[A-Za-z0-9.\-+ ]+",
                                                                 project["license"])
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))
    (setuptools,) = [r for r in doc["build-system"]["requires"] if r.startswith("setuptools")]
    assert re.fullmatch(r"setuptools>=(\d+)", setuptools) and int(setuptools[12:]) >= 77


def test_the_hub_install_has_no_torch_or_onnx() -> None:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0].lower() for d in deps}
    assert not names & {"torch", "onnx", "onnxscript", "litert-torch", "tensorflow"}, names
