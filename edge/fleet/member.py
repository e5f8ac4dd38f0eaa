"""The daemon's side of a federation (``edge-daemon --fleet URL``): the hub's training file and its SuperNode, supervised.

The hub's confirmed labels and the embeddings of the windows they cover (the personal
store, :mod:`edge.personal.store`) are written to ``STATE_DIR/fleet/train.npz`` (owner-only;
it never leaves the hub: the ClientApp reads it and sends only the trained head), rewritten
every ``fleet.refresh_s`` for new labels, and a Flower SuperNode runs as a child process
(:func:`edge.fleet.deploy.supernode_command`), restarted with a growing pause when it
exits. Everything blocking runs on threads; the event loop only awaits. The child is
stopped when the daemon stops. A hub with no confirmed labels yet does not join: there is
nothing it could train, and the coordinator would wait on its empty reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
from pathlib import Path
from typing import IO, Any, Final

import numpy as np

from edge.fleet.deploy import FLOWER_HOME, DeployError, check_files, flower_env, flower_exe
from edge.fleet.hub_options import FleetJoinOptions

__all__ = ["FleetMember", "check_fleet_ready", "export_local_data"]

log = logging.getLogger(__name__)

FLEET_DIR: Final = "fleet"
TRAIN_FILE: Final = "train.npz"
RESTART_S: Final = (5.0, 300.0)  # first pause before restarting an exited SuperNode, and the most
STOP_GRACE_S: Final = 10.0


def check_fleet_ready(opts: FleetJoinOptions, *, database: bool) -> None:
    """DeployError (one line) when this install or configuration cannot join a federation."""
    if importlib.util.find_spec("flwr") is None:
        raise DeployError("--fleet needs Flower: pip install 'wearable-edge[fleet]'")
    flower_exe("flower-supernode")
    if not database:
        raise DeployError("--fleet trains on the labels in the hub's database: drop --no-db")
    if opts.tls:
        check_files({"--fleet-ca": Path(opts.root_certificates)})


def export_local_data(db_path: Path, bundle: Any, dest: Path) -> int:
    """Every wearer's confirmed windows of ``bundle``'s body → ``dest`` (LocalData, 0600);
    the number of rows (0: nothing written)."""
    from edge.fleet.local_data import LocalData
    from edge.personal.store import PersonalStore

    embs, ys, starts, wearers = [], [], [], []
    with PersonalStore(db_path) as store:
        for w in store.residents_with_labels():
            emb, y, t_end = store.labelled(
                w, bundle.model_id, bundle.model_version, tuple(bundle.class_names)
            )
            if len(y):
                embs.append(emb)
                ys.append(y)
                starts.append(t_end - bundle.contract.window_s)
                wearers.append(np.full(len(y), w))
    if not ys:
        return 0
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(dest.parent, 0o700)  # the file is written aside and renamed in: a private folder
    data = LocalData(
        np.concatenate(embs), np.concatenate(ys), np.concatenate(wearers), np.concatenate(starts)
    )
    data.save(dest)
    os.chmod(dest, 0o600)  # embeddings and labels describe residents: owner-only
    return len(data)


class FleetMember:
    """See the module docstring. :meth:`start` on the daemon's loop, :meth:`stop` at its end."""

    def __init__(
        self,
        opts: FleetJoinOptions,
        *,
        db_path: Path,
        state_dir: Path,
        bundle: Any,
        update_dir: Path | None = None,
    ):
        self.opts = opts
        self.update_dir = update_dir  # the daemon's update folder: the federation's head goes there
        self.db_path = Path(db_path)
        self.state_dir = Path(state_dir)
        self.bundle = bundle
        self.dir = self.state_dir / FLEET_DIR
        self.data = self.dir / TRAIN_FILE
        self.rows = 0
        self.restarts = 0
        self.proc: asyncio.subprocess.Process | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="fleet")

    async def stop(self) -> None:
        """The supervisor first (it sees the stop at its next await, so it starts no new
        child), then the child."""
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_S)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self._end_child()

    def health(self) -> dict[str, Any]:
        running = self.proc is not None and self.proc.returncode is None
        return {"joined": running, "rows": self.rows, "restarts": self.restarts}

    async def _refresh(self) -> None:
        try:
            self.rows = await asyncio.to_thread(
                export_local_data, self.db_path, self.bundle, self.data
            )
        except Exception as e:  # noqa: BLE001 - a database hiccup must not end the daemon
            log.warning("fleet: could not write the training file: %s", e)

    async def _spawn(self) -> asyncio.subprocess.Process:
        from edge.fleet.deploy import supernode_command
        from edge.fleet.pseudonym import load_or_create_key

        await asyncio.to_thread(load_or_create_key, self.state_dir)
        ca = Path(self.opts.root_certificates) if self.opts.tls else None
        cmd = supernode_command(self.opts.superlink, self.data, self.state_dir, ca, self.update_dir)
        out: IO[bytes] = await asyncio.to_thread(open, self.dir / "supernode.log", "ab")
        try:
            return await asyncio.create_subprocess_exec(
                *cmd,
                env=flower_env(self.state_dir / FLOWER_HOME),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            out.close()  # the child holds its own descriptor

    async def _wait_stop(self, seconds: float) -> bool:
        """True when the daemon stops within ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return self._stop.is_set()

    async def _supervise(self) -> None:
        pause = RESTART_S[0]
        while not self._stop.is_set():
            await self._refresh()
            if self.rows == 0:
                log.info("fleet: no confirmed labels yet; joining %s once there are", self.opts.url)
                if await self._wait_stop(self.opts.refresh_s):
                    return
                continue
            try:
                self.proc = await self._spawn()
            except (OSError, DeployError) as e:
                log.error("fleet: cannot start the SuperNode: %s; again in %.0f s", e, pause)
                if await self._wait_stop(pause):
                    return
                pause = min(pause * 2, RESTART_S[1])
                continue
            log.info(
                "fleet: joined %s (SuperNode pid %d) with %d labelled windows",
                self.opts.url,
                self.proc.pid,
                self.rows,
            )
            code = await self._watch(self.proc)
            if code is None:  # the daemon stops
                return
            self.restarts += 1
            log.warning(
                "fleet: the SuperNode exited (%d); again in %.0f s (%s)",
                code,
                pause,
                self.dir / "supernode.log",
            )
            if await self._wait_stop(pause):
                return
            pause = min(pause * 2, RESTART_S[1])

    async def _watch(self, proc: asyncio.subprocess.Process) -> int | None:
        """Refresh the training file until the child exits (its code) or the daemon stops."""
        exited = asyncio.ensure_future(proc.wait())
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {exited, stopping},
                    timeout=self.opts.refresh_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stopping in done:
                    return None
                if exited in done:
                    return int(exited.result())
                await self._refresh()  # the ClientApp reads the file each round
        finally:
            for f in (exited, stopping):
                if not f.done():
                    f.cancel()

    async def _end_child(self) -> None:
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            log.warning("fleet: the SuperNode did not stop within %.0f s: killed", STOP_GRACE_S)
            proc.kill()
            await proc.wait()
        log.info("fleet: left the federation (SuperNode stopped)")
