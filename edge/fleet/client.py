"""The hub's Flower ClientApp: train the shared head on the hub's own labelled embeddings.

A train message brings the round's head (``"arrays"``: W, b; or, when the config holds a
public basis, the head's coefficients in it: :mod:`edge.fleet.subspace`) and settings
(``"config"``); the reply carries the trained head (or coefficients), one weight (``"metrics"``) and the hub's pseudonym
(``"about"``), nothing else: no window, embedding, label, RR interval or sample, and no
wearer id (tests/unit/edge/fleet/test_client.py reads the records a hub sends). Numpy and
flwr only: this runs on a hub.

A query message of type :data:`~edge.fleet.delivery.MESSAGE_TYPE` brings, after the last
round, the coordinator's signed head update; the hub writes it into its update folder for
the daemon to verify and take (:mod:`edge.fleet.delivery`) and replies with its name there,
or why not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from edge.fleet.delivery import ACTION, RECORD, DeliveryError, hub_update_folder, write_delivered
from edge.fleet.local_data import LocalData
from edge.fleet.pseudonym import Pseudonymizer
from edge.fleet.subspace import BASIS_KEY, HeadBasis
from edge.personal.head import Head, fit_head

__all__ = [
    "WEIGHT_KEY",
    "HubSide",
    "app",
    "make_client_app",
    "node_config_hub",
    "train_coefficients",
    "train_reply",
]

log = logging.getLogger(__name__)

WEIGHT_KEY: Final = "weight"  # FedAvg's weighted_by_key on the coordinator
HUB_ID_FILE: Final = "fleet_hub_id"  # the hub's own name, pseudonymized before it is sent

# (the hub's labelled embeddings, its pseudonymizer, its own id) for one ClientApp call
HubSide = tuple[LocalData, Pseudonymizer, str]
HubLoader = Callable[[Context], HubSide]


def node_config_hub(context: Context) -> HubSide:
    """A deployed hub's side, from the SuperNode's ``--node-config``: ``data`` (the .npz the
    hub exported its labelled embeddings to) and ``state-dir`` (where its pseudonym key is)."""
    cfg = context.node_config
    state_dir = Path(str(cfg.get("state-dir", ".")))
    hub_id_file = state_dir / HUB_ID_FILE
    hub_id = hub_id_file.read_text().strip() if hub_id_file.exists() else state_dir.name
    return (LocalData.load(Path(str(cfg["data"]))), Pseudonymizer.for_state_dir(state_dir), hub_id)


def train_reply(head: Head, data: LocalData, config: Any) -> tuple[Head, float]:
    """The hub's training step: the round's head fitted on its labels; and its weight."""
    return fit_head(head, data.emb, data.y, **_fit_settings(config)), _weight(data, config)


def train_coefficients(
    basis: HeadBasis, A: np.ndarray, data: LocalData, config: Any
) -> tuple[np.ndarray, float]:
    """The hub's training step in a public basis: the round's coefficients fitted on its
    labels; and its weight."""
    return basis.fit(A, data.emb, data.y, **_fit_settings(config)), _weight(data, config)


def _fit_settings(config: Any) -> dict[str, Any]:
    """The round's training settings, as the fits take them."""
    return {
        "steps": int(config["local-steps"]),
        "lr": float(config["lr"]),
        "l2": float(config["l2"]),
        "prox_mu": float(config.get("proximal-mu", 0.0)),
    }


def _weight(data: LocalData, config: Any) -> float:
    return 1.0 if bool(config.get("uniform-weight", False)) else float(len(data))


def make_client_app(load: HubLoader = node_config_hub, mods: Sequence[Any] = ()) -> ClientApp:
    """A ClientApp whose hub side comes from ``load`` (deployment: the node config;
    simulation: the partition's folder). ``mods`` are Flower client mods (local DP)."""
    client = ClientApp(mods=list(mods))

    @client.train()
    def train(msg: Message, context: Context) -> Message:
        data, pseudonyms, hub_id = load(context)
        sent = msg.content.array_records["arrays"]
        config = msg.content.config_records["config"]
        if BASIS_KEY in config:
            basis = HeadBasis.from_bytes(bytes(config[BASIS_KEY]))  # type: ignore[arg-type]
            coef, weight = train_coefficients(basis, sent.to_numpy_ndarrays()[0], data, config)
            trained = [coef]
        else:
            head = Head.from_arrays(sent.to_numpy_ndarrays())
            new, weight = train_reply(head, data, config)
            trained = new.to_arrays()
        # the keys the coordinator used, so its DP wrapper and FedAvg match them up
        arrays = ArrayRecord(dict(zip(sent.keys(), ArrayRecord(trained).values(), strict=True)))
        content = RecordDict(
            {
                "arrays": arrays,
                "metrics": MetricRecord({WEIGHT_KEY: weight}),
                "about": ConfigRecord({"hub": pseudonyms.hub(hub_id)}),
            }
        )
        return Message(content, reply_to=msg)

    @client.query(ACTION)
    def head_update(msg: Message, context: Context) -> Message:
        return Message(RecordDict({RECORD: deliver(msg, context)}), reply_to=msg)

    return client


def deliver(msg: Message, context: Context) -> ConfigRecord:
    """The head update in ``msg`` written into the hub's update folder: the reply's record
    (``written``: the update's name there, or ``error``: one line)."""
    try:
        record = msg.content.config_records.get(RECORD)
        if record is None:
            raise DeliveryError(f"head update message: no {RECORD!r} record")
        dest = write_delivered(record, hub_update_folder(context.node_config))
    except DeliveryError as e:
        log.warning("%s", e)
        return ConfigRecord({"error": str(e)})
    log.info("head update %s written for the daemon to verify and take", dest)
    return ConfigRecord({"written": dest.name})


# what `flower-supernode` loads on a hub (the app's pyproject names "edge.fleet.client:app")
app = make_client_app()
