"""edge.sinks.sqlite.open_database keeps the hub's own connections safe from another process.

A hub opens the database again while it runs (a refit, a rollback check), and people write
to it from other processes while it runs (``edge-daemon label``). Closing any descriptor of
the file drops every POSIX lock the process holds on it, SQLite's included; then another
process's connection, closing, believes it is the last one, checkpoints and deletes the WAL
the hub is still writing to, and the hub's next writes fail ("disk I/O error") or vanish.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from edge.sinks.sqlite import open_database

OTHER_PROCESS = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("INSERT INTO notes VALUES ('from elsewhere')")
conn.commit()
conn.close()
"""


def test_reopening_in_the_hub_keeps_its_wal_safe_from_another_writer(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    hub = open_database(db)  # the hub's long-lived connection
    with hub:
        hub.execute("CREATE TABLE notes (text TEXT)")
        hub.execute("INSERT INTO notes VALUES ('before')")
    open_database(db).close()  # the hub opens it again (a refit), and closes that
    subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(db)], check=True, timeout=60)
    with hub:  # fails with "disk I/O error" once the WAL was deleted under it
        hub.execute("INSERT INTO notes VALUES ('after')")
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        notes = [r[0] for r in reader.execute("SELECT text FROM notes ORDER BY rowid")]
    finally:
        reader.close()
        hub.close()
    assert notes == ["before", "from elsewhere", "after"]
