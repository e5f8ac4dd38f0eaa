"""edge.sinks.jsonl: one JSON object per line, to a stream or an owner-only file."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

from edge.sinks import JsonLinesSink
from tests.fakes.records import decision, event


def test_jsonl_to_a_stream_one_object_per_line() -> None:
    out = io.StringIO()
    sink = JsonLinesSink(stream=out)
    sink.start()
    sink.submit(decision(1))
    sink.submit(event("no_contact"))
    assert sink.flush(5.0)
    sink.close(5.0)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [x["type"] for x in lines] == ["decision", "event"]
    assert lines[0]["state"] == "stress" and lines[1]["kind"] == "no_contact"


def test_jsonl_file_is_appended_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "out" / "decisions.jsonl"
    for _ in range(2):
        sink = JsonLinesSink(path)
        sink.start()
        sink.submit(decision(0))
        sink.close(5.0)
    assert len(path.read_text().splitlines()) == 2
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
