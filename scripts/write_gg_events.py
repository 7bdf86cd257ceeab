"""Writes ``tests/fixtures/events/gg_resume/`` with gpugraph (run with the project's own Python,
not TF's): the TF run in ``tests/fixtures/events/resume_run`` (checkpointed at step 4, logged
to step 6) resumed for 4 steps by ``gpugraph resume --logdir --summary-every 1``; the event
file it writes is kept.  ``scripts/make_event_fixtures.py --check-gg`` then reads it with
TensorBoard's own reader, together with TF's event file::

    .venv/bin/python scripts/write_gg_events.py
    /work/tfenv/bin/python scripts/make_event_fixtures.py --check-gg
"""

from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile

from gpugraph import resume as rs

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "events"


def resume(logdir: pathlib.Path, out: pathlib.Path) -> rs.ResumeResult:
    """The resumed run (the test runs it the same way)."""
    run = FIXTURES / "resume_run"
    feed = str(run / "feed.npz")
    return rs.resume(rs.ResumeOptions(
        checkpoint=str(run / "model-4"), steps=4, out=str(out), logdir=str(logdir),
        summary_every=1, feeds=[rs.FeedSource("x:0", feed, "x"), rs.FeedSource("y:0", feed, "y")]))


def main() -> None:
    target = FIXTURES / "gg_resume"
    if target.exists():
        shutil.rmtree(target)
    with tempfile.TemporaryDirectory() as out:
        result = resume(target, pathlib.Path(out))
    print("losses", result.losses, "->", sorted(p.name for p in target.iterdir()))


if __name__ == "__main__":
    sys.exit(main())
