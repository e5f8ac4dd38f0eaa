"""edge.models: which model fits what a device offers, and the one line when none does."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.contract import WESAD_WRIST_MODALITIES, InputContract
from edge.bundle import load_bundle
from edge.config import DaemonConfig
from edge.errors import BundleError
from edge.models import Model, bundle_paths, choose_model, warn_dead_classes
from edge.sources.ble.translate import StandardProfileTranslator
from export.bundle_writer import write_manifest
from firmware_bridge.protocol import SampleFormat, SensorInfo
from tests.fakes.bundles import write_fake_bundle
from tests.fakes.hr import toy_hr_contract

CLASSES = ("baseline", "stress", "amusement")
WRIST_SENSORS = (
    SensorInfo(1, "bvp", "a.u.", 64.0, 1, SampleFormat.INT16, 0.1),
    SensorInfo(2, "eda", "uS", 4.0, 1, SampleFormat.UINT16, 0.001),
    SensorInfo(3, "temp", "degC", 4.0, 1, SampleFormat.INT16, 0.01),
    SensorInfo(4, "acc", "g", 32.0, 3, SampleFormat.INT16, 1 / 4096),
)


def model(tmp: Path, name: str, contract: InputContract) -> Model:
    write_fake_bundle(tmp / name, contract=contract, model_id=name)
    return Model(load_bundle(tmp / name), engine=None, engine_name="fake")  # type: ignore[arg-type]


@pytest.fixture
def models(tmp_path: Path) -> list[Model]:
    wrist = InputContract(WESAD_WRIST_MODALITIES, CLASSES)
    return [model(tmp_path, "wrist-v1", wrist), model(tmp_path, "hr-v1", toy_hr_contract())]


def strap(rr: bool) -> tuple[SensorInfo, ...]:
    tr = StandardProfileTranslator("C0:FF:EE:00:00:01", heart_rate=True, thermometer=False)
    tr.sends_rr = rr
    return tr.sensors()


def test_each_device_gets_the_model_that_fits_what_it_offers(models: list[Model]) -> None:
    wrist, hr = models
    assert choose_model(models, strap(rr=True), device="strap") == (hr, "")
    assert choose_model(models, WRIST_SENSORS, device="wrist") == (wrist, "")
    # a wearable with the full service that also sends RR: the model that uses more of it
    both = (*WRIST_SENSORS, *strap(rr=True))
    assert choose_model(models, both, device="both")[0] is wrist
    assert choose_model(models[::-1], both, device="both")[0] is wrist


def test_no_fit_is_one_line_that_says_what_is_missing(models: list[Model]) -> None:
    got, why = choose_model(models, strap(rr=False), device="C0:FF:EE:00:00:01 (HRM)")
    assert got is None and "\n" not in why
    assert why.startswith("C0:FF:EE:00:00:01 (HRM) offers hr[bpm]; no model fits: ")
    assert "wrist-v1 needs bvp[a.u.], eda[uS], temp[degC], acc[g]" in why
    assert "hr-v1 needs rr (RR intervals, s)" in why
    assert "no RR intervals: switch on RR" in why  # what a technician can do about it
    got, why = choose_model(models[:1], strap(rr=True), device="strap")
    assert got is None and "offers hr[bpm], rr[s]" in why and "RR" not in why.split(";")[-1]
    # a sensor of the right kind in the wrong unit does not feed the modality
    ms = (SensorInfo(2, "rr", "ms", 1.0, 1, SampleFormat.UINT16, 1.0),)
    assert choose_model(models, ms, device="x")[0] is None


def test_bundle_paths_default_to_the_shipped_ones_and_take_more(tmp_path: Path) -> None:
    assert bundle_paths(DaemonConfig(bundle="a", bundles=["b", "c"])) == ["a", "b", "c"]
    demos = bundle_paths(DaemonConfig())
    assert demos and demos[0].endswith("demo_bundle")


def test_bundle_paths_say_what_to_do_without_a_demo_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    import edge.models

    monkeypatch.setattr(edge.models, "demo_bundle_paths", lambda: ())
    with pytest.raises(BundleError, match="pass --bundle DIR"):
        bundle_paths(DaemonConfig())


def test_a_dead_class_in_the_manifest_is_one_warning_at_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    wrist = InputContract(WESAD_WRIST_MODALITIES, CLASSES)
    manifest = write_fake_bundle(tmp_path / "ok", contract=wrist, model_id="ok")
    assert warn_dead_classes(load_bundle(tmp_path / "ok")) is None
    write_fake_bundle(tmp_path / "dead", contract=wrist, model_id="dead")
    write_manifest(tmp_path / "dead", {**manifest, "model_id": "dead",
                                       "dead_classes": ["amusement"]})
    with caplog.at_level("WARNING", logger="edge.models"):
        line = warn_dead_classes(load_bundle(tmp_path / "dead"))
    assert line is not None and "dead never predicts amusement" in line
    said = [r.getMessage() for r in caplog.records
            if r.name == "edge.models" and r.levelname == "WARNING"]
    assert said == [line]
