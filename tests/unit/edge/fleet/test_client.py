"""edge.fleet.client: what a hub sends is the trained head (or its coefficients in a public
basis), a weight and its pseudonym, and nothing of its data: no window, embedding, label,
RR interval, sample or wearer id."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.app.message.message import make_message
from flwr.app.message_type import MessageType
from flwr.app.metadata import Metadata

from edge.fleet.client import make_client_app
from edge.fleet.delivery import MESSAGE_TYPE, RECORD
from edge.fleet.dp import local_dp_mod
from edge.fleet.local_data import LocalData, LocalDataError
from edge.fleet.options import FleetOptions
from edge.fleet.pseudonym import Pseudonymizer
from edge.fleet.subspace import BASIS_KEY, HeadBasis, public_basis
from edge.personal.head import Head

D, K = 6, 3
RR_MS = np.array([812.0, 790.0, 845.0, 801.0])  # what a strap would have sent the hub


def hub_data() -> LocalData:
    rng = np.random.default_rng(3)
    y = rng.integers(0, K, 60)
    emb = (np.eye(K, D)[y] * 2 + rng.normal(0, 0.5, (60, D))).astype(np.float32)
    return LocalData(
        emb,
        y.astype(np.int64),
        np.array(["anna"] * 30 + ["bert"] * 30),
        np.arange(60, dtype=np.float64) * 5,
    )


def train_message(config: dict) -> Message:
    head = Head(np.zeros((D, K), np.float32), np.zeros(K, np.float32))
    content = RecordDict({"arrays": ArrayRecord(head.to_arrays()), "config": ConfigRecord(config)})
    # the metadata the runtime gives a message it delivers to a hub
    meta = Metadata(
        run_id=1,
        message_id="m1",
        src_node_id=0,
        dst_node_id=1,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=3600.0,
        message_type=MessageType.TRAIN,
    )
    return make_message(meta, content)


def run_train(tmp: Path, leak: bool = False) -> Message:
    data = hub_data()
    names = Pseudonymizer.for_state_dir(tmp)

    def load(ctx: Context) -> tuple[LocalData, Pseudonymizer, str]:
        return data, names, "hub-kitchen-wing"

    app = make_client_app(load)
    if leak:  # positive control: a client that (wrongly) ships its data as well
        inner = make_client_app(load)

        def leaky(msg: Message, ctx: Context) -> Message:
            out = inner(msg, ctx)
            out.content["leak"] = ArrayRecord([data.emb, data.y, RR_MS])
            out.content["who"] = ConfigRecord({"wearer": "anna"})
            return out

        app = leaky  # type: ignore[assignment]
    ctx = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    return app(train_message({**FleetOptions().train_config(), "local-steps": 20}), ctx)


def sent_values(msg: Message) -> tuple[list[np.ndarray], list[str]]:
    """Every array and every string in the reply's records, as the coordinator receives them."""
    arrays, strings = [], []
    for record in msg.content.values():
        if isinstance(record, ArrayRecord):
            arrays.extend(record.to_numpy_ndarrays())
        else:
            for v in record.values():
                vs = v if isinstance(v, list) else [v]
                strings.extend(str(x) for x in vs)
    return arrays, strings


def holds_data(msg: Message) -> list[str]:
    data = hub_data()
    arrays, strings = sent_values(msg)
    found = []
    for a in arrays:
        flat = np.asarray(a, np.float64).ravel()
        for name, raw in (("embedding", data.emb[0]), ("rr", RR_MS), ("labels", data.y)):
            raw = np.asarray(raw, np.float64).ravel()
            if flat.size >= raw.size and any(
                np.allclose(flat[i : i + raw.size], raw) for i in range(flat.size - raw.size + 1)
            ):
                found.append(name)
    found += [f"id:{s}" for s in strings if "anna" in s or "bert" in s or "kitchen" in s]
    return found


def test_a_hub_sends_only_its_head_weight_and_pseudonym(tmp_path: Path) -> None:
    reply = run_train(tmp_path)
    assert set(reply.content.keys()) == {"arrays", "metrics", "about"}
    shapes = [a.shape for a in reply.content["arrays"].to_numpy_ndarrays()]
    assert shapes == [(D, K), (K,)]
    assert dict(reply.content["metrics"]) == {"weight": 60.0}
    assert str(reply.content["about"]["hub"]).startswith("hub-")
    assert holds_data(reply) == []


def test_the_inspection_finds_data_when_it_is_there(tmp_path: Path) -> None:
    found = holds_data(run_train(tmp_path, leak=True))
    assert {"embedding", "rr", "labels", "id:anna"} <= set(found)


def test_under_dp_every_hub_weighs_the_same(tmp_path: Path) -> None:
    data = hub_data()
    names = Pseudonymizer.for_state_dir(tmp_path)
    app = make_client_app(lambda ctx: (data, names, "h"))
    cfg = FleetOptions(dp="central", dp_epsilon=8.0).train_config()
    ctx = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    reply = app(train_message(cfg), ctx)
    assert dict(reply.content["metrics"]) == {"weight": 1.0}


def test_the_trained_head_fits_the_hub_better(tmp_path: Path) -> None:
    reply = run_train(tmp_path)
    head = Head.from_arrays(reply.content["arrays"].to_numpy_ndarrays())
    data = hub_data()
    assert np.mean(head.predict(data.emb) == data.y) > 0.8


def test_a_bad_data_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.npz").write_text("nope")
    with pytest.raises(LocalDataError, match="not a readable"):
        LocalData.load(tmp_path / "x.npz")
    hub_data().save(tmp_path / "ok.npz")
    assert len(LocalData.load(tmp_path / "ok.npz")) == 60


def subspace_message(basis: HeadBasis, config: dict) -> Message:
    msg = train_message({**config, BASIS_KEY: basis.to_bytes()})
    msg.content["arrays"] = ArrayRecord([basis.zero()])
    return msg


def hub_basis() -> HeadBasis:
    rng = np.random.default_rng(4)
    public = rng.normal(0, 1, (80, D)) * np.linspace(3, 0.1, D)
    return public_basis(Head(np.zeros((D, K)), np.zeros(K)), public, 2)


def test_in_a_basis_a_hub_sends_only_its_coefficients(tmp_path: Path) -> None:
    data = hub_data()
    names = Pseudonymizer.for_state_dir(tmp_path)
    app = make_client_app(lambda ctx: (data, names, "hub-kitchen-wing"))
    basis = hub_basis()
    ctx = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    reply = app(subspace_message(basis, FleetOptions().train_config()), ctx)
    assert set(reply.content.keys()) == {"arrays", "metrics", "about"}
    sent = reply.content["arrays"].to_numpy_ndarrays()
    assert [a.shape for a in sent] == [(2, K)]  # k x classes numbers, no head, no basis
    assert np.abs(sent[0]).sum() > 0  # trained
    assert holds_data(reply) == []


def test_local_dp_clips_and_noises_the_coefficients(tmp_path: Path) -> None:
    data = hub_data()
    names = Pseudonymizer.for_state_dir(tmp_path)
    opts = FleetOptions(dp="local", dp_epsilon=8.0, clip_norm=0.01)
    mod = local_dp_mod(opts)
    assert mod is not None
    app = make_client_app(lambda ctx: (data, names, "h"), mods=[mod])
    quiet = make_client_app(lambda ctx: (data, names, "h"))
    basis = hub_basis()
    ctx = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})
    noisy = app(subspace_message(basis, opts.train_config()), ctx)
    plain = quiet(subspace_message(basis, opts.train_config()), ctx)
    assert not noisy.has_error()
    a = noisy.content["arrays"].to_numpy_ndarrays()[0]
    b = plain.content["arrays"].to_numpy_ndarrays()[0]
    assert a.shape == b.shape == (2, K)
    assert np.linalg.norm(b) > 0.1  # the unclipped update is far larger than the clip
    assert np.linalg.norm(a) < 0.5 * np.linalg.norm(b)  # clipped before the noise
    assert not np.allclose(a, b * 0.01 / np.linalg.norm(b), atol=1e-6)  # noise on the clipped


def query_message(record: ConfigRecord) -> Message:
    meta = Metadata(run_id=1, message_id="q1", src_node_id=0, dst_node_id=1,
                    reply_to_message_id="", group_id="", created_at=time.time(), ttl=3600.0,
                    message_type=MESSAGE_TYPE)  # fmt: skip
    return make_message(meta, RecordDict({RECORD: record}))


def test_the_head_update_query_writes_it_and_replies_only_its_name(tmp_path: Path) -> None:
    app = make_client_app(lambda ctx: pytest.fail("a delivery reads no training data"))
    ctx = Context(run_id=1, node_id=1, node_config={"state-dir": str(tmp_path)},
                  state=RecordDict(), run_config={})  # fmt: skip
    record = ConfigRecord({"name": "fleet-1", "update.json": b"{}", "head.npz": b"x"})
    reply = app(query_message(record), ctx)
    (written,) = (tmp_path / "updates").iterdir()  # the daemon verifies it (or refuses it)
    assert dict(reply.content[RECORD]) == {"written": written.name}
    assert (written / "head.npz").read_bytes() == b"x"
    bad = app(query_message(ConfigRecord({"name": "../x", "update.json": b"{}"})), ctx)
    assert "refused update name" in str(bad.content[RECORD]["error"])
    assert len(list((tmp_path / "updates").iterdir())) == 1
