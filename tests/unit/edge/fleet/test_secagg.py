"""edge.fleet.secagg: under SecAgg+ the coordinator gets the same mean as plain FedAvg (within
the quantization bound) while what it receives from any one hub is masked. Two real Flower
simulations of 3 hubs and 1 round, one with SecAgg+ and one plain (the positive control).

The simulations run in a child process (this module run as a script): Ray leaves handles of
its own subprocesses for the garbage collector, whose ResourceWarnings would otherwise surface
under ``filterwarnings = error`` in whichever later test happens to collect them."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import ArrayRecord, Context, Message
from flwr.common import bytes_to_ndarray
from flwr.common.secure_aggregation.quantization import quantize
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

from edge.fleet import secagg
from edge.fleet.client import train_reply
from edge.fleet.local_data import LocalData
from edge.fleet.options import FleetOptions, FleetOptionsError
from edge.fleet.pseudonym import Pseudonymizer
from edge.personal.head import Head

REPO = Path(__file__).resolve().parents[4]
D, K, HUBS = 48, 3, 3  # the real head's width: 147 values, so a chance correlation stays small
SIZES = (40, 90, 160)  # unequal, so a weighted and an unweighted mean differ
OPTS = FleetOptions(rounds=1, local_steps=20)
# central DP under SecAgg+: each hub clips its update to 0.5, the coordinator noises the mean
OPTS_DP = FleetOptions(rounds=1, local_steps=20, dp="central", dp_epsilon=8.0, clip_norm=0.5)
SA = secagg.SecAggOptions()


def hub_data() -> list[LocalData]:
    rng = np.random.default_rng(5)
    out = []
    for i, n in enumerate(SIZES):
        y = rng.integers(0, K, n)
        # each hub's classes sit a little differently, so the hubs' heads differ
        emb = np.eye(K, D)[y] * (1.5 + i) + rng.normal(0, 0.8, (n, D))
        out.append(
            LocalData(
                emb.astype(np.float32),
                y.astype(np.int64),
                np.array([f"resident-{i}"] * n),
                np.arange(n, dtype=np.float64) * 5,
            )
        )
    return out


def initial_head() -> Head:
    rng = np.random.default_rng(1)
    return Head(rng.normal(0, 0.1, (D, K)).astype(np.float32), np.zeros(K, np.float32))


def _seen(reply: Message) -> dict[str, Any]:
    """What the coordinator received in one reply, as plain values."""
    content = reply.content
    cfg = content.config_records.get(RECORD_KEY_CONFIGS)
    masked = None
    if cfg is not None and Key.MASKED_PARAMETERS in cfg:
        levels: Any = cfg[Key.MASKED_PARAMETERS]  # a list of bytes: one array each
        masked = [bytes_to_ndarray(b) for b in levels]
    try:
        flower_bytes: int | None = sum(r.count_bytes() for r in content.values())
    except ValueError:  # Flower's count refuses empty strings and lists
        flower_bytes = None
    about = content.config_records.get("about")
    return {
        "hub": None if about is None else str(about["hub"]),
        "masked": masked,
        "arrays": {
            k: r.to_numpy_ndarrays() for k, r in content.items() if isinstance(r, ArrayRecord)
        },
        "bytes": secagg.message_bytes(content),
        "flower_bytes": flower_bytes,
    }


def _federate(root: Path, *, secure: bool, opts: FleetOptions = OPTS) -> dict[str, Any]:
    from flwr.serverapp import Grid, ServerApp
    from flwr.simulation import run_simulation

    from edge.fleet.client import make_client_app
    from edge.fleet.server import RoundReport, run_rounds
    from edge.fleet.simulate import _quiet_runtime

    data = hub_data()
    dirs = [root / f"hub-{i}" for i in range(HUBS)]
    for d in dirs:
        d.mkdir(parents=True)

    def load(context: Context) -> tuple[LocalData, Pseudonymizer, str]:
        i = int(context.node_config["partition-id"])
        return data[i], Pseudonymizer.for_state_dir(dirs[i]), f"hub-{i}"

    reports: list[RoundReport] = []
    final: list[Head] = []
    replies: list[dict[str, Any]] = []

    def audit(reply: Message) -> None:
        replies.append(_seen(reply))

    if secure:
        server = secagg.make_server_app(
            opts,
            initial_head(),
            HUBS,
            evaluate=lambda head: 0.5,
            on_round=reports.append,
            on_done=final.append,
            on_reply=audit,
        )
        client = secagg.make_client_app(load)
    else:  # the plain path, seen through the same auditing grid
        server = ServerApp()

        @server.main()
        def main(grid: Grid, context: Context) -> None:
            audited = secagg.MeteredGrid(grid, audit)
            final.append(run_rounds(audited, opts, initial_head(), HUBS, on_round=reports.append))

        client = make_client_app(load)
    with _quiet_runtime():
        run_simulation(
            server_app=server,
            client_app=client,
            num_supernodes=HUBS,
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {"num_cpus": 1, "include_dashboard": False, "log_to_driver": False},
            },
        )
    return {
        "final": final[0].to_arrays() if final else None,
        "reports": [asdict(r) for r in reports],
        "replies": replies,
        "hub_names": [Pseudonymizer.for_state_dir(d).hub(f"hub-{i}") for i, d in enumerate(dirs)],
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("secagg") / "runs.pkl"
    cmd = [sys.executable, "-m", "tests.unit.edge.fleet.test_secagg", str(out)]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    with out.open("rb") as f:
        result: dict[str, dict[str, Any]] = pickle.load(f)  # written by this module, below
    for name, run in result.items():
        assert run["final"] is not None, f"the {name} federation did not finish"
    return result


@pytest.fixture(scope="module")
def secure_run(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return runs["secure"]


@pytest.fixture(scope="module")
def plain_run(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return runs["plain"]


@pytest.fixture(scope="module")
def dp_run(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return runs["secure-dp"]


def real_updates() -> list[tuple[Head, float]]:
    """Each hub's trained head and weight, as the hub computes them (deterministic)."""
    return [train_reply(initial_head(), d, OPTS.train_config()) for d in hub_data()]


def flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(a, np.float64).ravel() for a in arrays])


def mean(weights: list[float]) -> np.ndarray:
    heads = [flat(h.to_arrays()) for h, _ in real_updates()]
    w = np.asarray(weights, np.float64)
    return np.sum([wi * h for wi, h in zip(w, heads, strict=True)], axis=0) / w.sum()


Run = dict[str, Any]


def test_secagg_mean_equals_plain_fedavg_within_quantization_tolerance(
    secure_run: Run, plain_run: Run
) -> None:
    updates = real_updates()
    weights = [w for _, w in updates]
    fedavg = mean(weights)
    largest = max(float(np.abs(flat(h.to_arrays())).max()) for h, _ in updates)
    # the plain path is the weighted mean of exactly these updates
    np.testing.assert_allclose(flat(plain_run["final"]), fedavg, rtol=0, atol=1e-5)
    tol = secagg.quantization_tolerance(weights, largest, SA)
    got = flat(secure_run["final"])
    assert np.abs(got - fedavg).max() <= tol
    # the bound can tell a wrong aggregate: the unweighted mean lies far outside it
    assert np.abs(mean([1.0] * HUBS) - fedavg).max() > 10 * tol


def decode_alone(levels: list[np.ndarray], weight: float) -> np.ndarray:
    """Read one hub's vector as if it were the only one in the sum: drop the weight factor,
    dequantize, undo the weight's scaling. Equal to the hub's head only if nothing masks it."""
    ratio = weight / SA.max_weight
    q = flat(levels[1:])
    return (q * 2 * SA.clipping_range / SA.quantization_range - SA.clipping_range) / ratio


def test_the_coordinator_receives_only_masked_vectors(secure_run: Run) -> None:
    updates = real_updates()
    masked = [r for r in secure_run["replies"] if r["masked"] is not None]
    assert len(masked) == HUBS
    for reply in masked:
        head, weight = updates[secure_run["hub_names"].index(reply["hub"])]
        real = flat(head.to_arrays())
        decoded = decode_alone(reply["masked"], weight)
        assert not np.allclose(decoded, real, atol=0.1)
        # neither with the head it sends nor with its change from the round's head
        for target in (real, real - flat(initial_head().to_arrays())):
            assert abs(np.corrcoef(decoded, target)[0, 1]) < 0.5
    # the head travels in no other record of any reply, in any stage
    for reply in secure_run["replies"]:
        assert all(len(a) == 0 for a in reply["arrays"].values())


def test_positive_control_unmasked_vectors_are_the_hubs_heads(plain_run: Run) -> None:
    updates = real_updates()
    # the same decoder on a hub's vector quantized without masks gives its head back
    head, weight = updates[0]
    ratio = round(weight) / SA.max_weight
    unmasked = quantize(
        [np.array([0.0])] + [a * ratio for a in head.to_arrays()],
        SA.clipping_range,
        SA.quantization_range,
    )
    decoded = decode_alone(unmasked, weight)
    assert np.abs(decoded - flat(head.to_arrays())).max() < 1e-3
    assert np.corrcoef(decoded, flat(head.to_arrays()))[0, 1] > 0.99
    # and without SecAgg+ the coordinator receives each hub's head as it is
    assert len(plain_run["replies"]) == HUBS
    for reply in plain_run["replies"]:
        i = plain_run["hub_names"].index(reply["hub"])
        np.testing.assert_array_equal(
            flat(reply["arrays"]["arrays"]), flat(updates[i][0].to_arrays())
        )


def test_round_report_is_the_plain_paths_with_every_stage_counted(
    secure_run: Run, plain_run: Run
) -> None:
    (report,) = secure_run["reports"]
    (plain,) = plain_run["reports"]
    assert report["round"] == 1 and report["epsilon"] is None
    assert report["global_macro_f1"] == 0.5
    # each hub named by its own pseudonym, as on the plain path (each run has its own keys)
    assert report["hubs"] == sorted(secure_run["hub_names"])
    assert plain["hubs"] == sorted(plain_run["hub_names"])
    assert report["bytes_up"] == sum(r["bytes"] for r in secure_run["replies"])
    # keys, shares and the masked vector cost more than the head alone
    assert report["bytes_up"] > plain["bytes_up"]
    assert np.isnan(report["update_norm_median"])  # no single update is visible


def test_message_bytes_counts_as_flower_does(plain_run: Run) -> None:
    for reply in plain_run["replies"]:
        assert reply["bytes"] == reply["flower_bytes"]


def test_central_dp_under_secagg_clips_on_the_hubs_and_noises_the_mean(dp_run: Run) -> None:
    from edge.fleet.accountant import GaussianAccountant
    from edge.fleet.dp import noise_multiplier

    z = noise_multiplier(OPTS_DP)
    assert z is not None
    start = flat(initial_head().to_arrays())
    clipped = []
    for head, weight in (
        train_reply(initial_head(), d, OPTS_DP.train_config()) for d in hub_data()
    ):
        assert weight == 1.0  # every hub weighs the same under DP
        update = flat(head.to_arrays()) - start
        assert np.linalg.norm(update) > OPTS_DP.clip_norm  # so clipping shows in the mean
        clipped.append(update * min(1.0, OPTS_DP.clip_norm / np.linalg.norm(update)))
    noise = flat(dp_run["final"]) - (start + np.mean(clipped, axis=0))
    sigma = z * OPTS_DP.clip_norm / HUBS  # Flower's noise on the mean of HUBS clipped updates
    # 147 draws: their spread is within 30 % of sigma (5 standard errors); unclipped updates
    # or missing noise would be far outside
    assert 0.7 * sigma < float(np.std(noise)) < 1.3 * sigma
    (report,) = dp_run["reports"]
    assert report["epsilon"] == pytest.approx(GaussianAccountant(z, OPTS_DP.dp_delta).step())
    assert sum(r["masked"] is not None for r in dp_run["replies"]) == HUBS


BAD: list[tuple[dict[str, object], str]] = [
    ({"num_shares": 2}, "num_shares"),
    ({"num_shares": 1.5}, "num_shares"),
    ({"num_shares": "all"}, "num_shares"),
    ({"reconstruction_threshold": 0.4}, "reconstruction_threshold"),
    ({"num_shares": 5, "reconstruction_threshold": 5}, "reconstruction_threshold"),
    ({"clipping_range": 0.0}, "clipping_range"),
    ({"quantization_range": 2**33}, "quantization_range"),
    ({"max_weight": -1.0}, "max_weight"),
]


@pytest.mark.parametrize(("kwargs", "key"), BAD)
def test_option_errors_are_one_line(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(FleetOptionsError) as e:
        secagg.SecAggOptions(**kwargs)  # type: ignore[arg-type]
    assert key in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("check", "needle"),
    [
        (lambda: SA.check_hubs(2), "at least 3 hubs"),
        (lambda: secagg.make_server_app(OPTS, initial_head(), 2), "at least 3 hubs"),
        (lambda: secagg.SecAggOptions(quantization_range=2**30).check_hubs(8), "overflows"),
        (lambda: FleetOptions(secagg=True, dp="local", dp_epsilon=8.0), "local DP"),
    ],
)
def test_refusals_are_one_line(check: Callable[[], object], needle: str) -> None:
    with pytest.raises(FleetOptionsError) as e:
        check()
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_cli_refuses_secagg_with_dp_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.fleet.cli import EXIT_INPUT, main

    argv = ["simulate", "--secagg", "--dp", "local", "--dp-epsilon", "8"]
    argv += ["--embeddings", str(tmp_path / "e.npz"), "--out", str(tmp_path / "out")]
    assert main(argv) == EXIT_INPUT
    err = capsys.readouterr().err.strip()
    assert "secagg" in err and "local DP" in err and "\n" not in err


if __name__ == "__main__":  # the child process of the ``runs`` fixture
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "secure": _federate(Path(tmp) / "secure", secure=True),
            "plain": _federate(Path(tmp) / "plain", secure=False),
            "secure-dp": _federate(Path(tmp) / "dp", secure=True, opts=OPTS_DP),
        }
    with open(sys.argv[1], "wb") as f:
        pickle.dump(result, f)
