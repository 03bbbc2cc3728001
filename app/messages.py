"""What a web user may read of the server: messages name settings and folders relative to
DATA_DIR, never the server's absolute paths, hosts or ports (those go to the log)."""

from __future__ import annotations

import sys
from pathlib import Path

from app.settings import Settings


def without_paths(message: str, settings: Settings) -> str:
    """`message` as a web user may see it: DATA_DIR written as `DATA_DIR`, the home folder
    as `~`, the Python installation as `<python>` (the server's layout is nobody's business).

    >>> without_paths("no folder 'x' in /srv/var/datasets", Settings(DATA_DIR="/srv/var"))
    "no folder 'x' in DATA_DIR/datasets"
    """
    places = {
        str(settings.data_dir.resolve()): "DATA_DIR",
        str(settings.data_dir.absolute()): "DATA_DIR",
        sys.prefix: "<python>",
        sys.base_prefix: "<python>",
        str(Path.home()): "~",
    }
    for place, name in sorted(places.items(), key=lambda item: -len(item[0])):
        if len(place) > 1:
            message = message.replace(place, name)
    return message
