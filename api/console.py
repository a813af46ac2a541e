"""The `dispute-service` console script: the CLI, with the cyclic garbage collector paused while `serve`
starts.

Starting the server makes some 120,000 objects (modules, classes, functions, SQLAlchemy's and pydantic's
schemas) and frees almost none of them, yet the cyclic collector, which runs every 700 allocations, scanned
them again and again: about a sixth of the start on a 2-core machine (issue 11). So `serve` starts with the
collector off; once its app is built it freezes what the start made (kept for the life of the process, so no
later collection need scan it either) and turns the collector back on, before it migrates or takes a
request. Every other command runs with the collector on, as Python starts it.
"""

from __future__ import annotations

import gc
import sys


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        gc.disable()
    # Imported after the collector is paused: this import is a third of the start.
    from api.cli import app

    app()
