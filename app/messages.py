"""Messages as a web user reads them.

- `without_paths`: messages name settings and folders relative to DATA_DIR, never the server's
  absolute paths, hosts or ports (those go to the log).
- `on_screen`: an `InvalidInput` in the words of its form: the label on screen instead of the
  field's name (the worker and the JSON API say `kernel_size`, `in_channels`; a person sees
  "Kernel" and "Channels"), every field name the message mentions put in the form's words, and
  text between backticks shown as code. Demos and quiz answers alike.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup, escape

from app.settings import Settings
from app.worker.errors import InvalidInput, relabel


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


_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class ScreenError:
    """What a form shows for an InvalidInput. `field` is the control's name (to mark it)."""

    field: str
    label: str
    message: Markup

    def __html__(self) -> Markup:
        """ "Label: message", as a sentence above a form shows it."""
        return escape(self.label) + Markup(": ") + self.message

    def __str__(self) -> str:
        return str(self.__html__())


def in_sentence(label: str) -> str:
    """A label as it reads inside a sentence: "Out channels" → "out channels", "N (operations)"
    and "α" unchanged."""
    if len(label) > 1 and label[0].isupper() and label[1].islower():
        return label[0].lower() + label[1:]
    return label


def as_html(text: str) -> Markup:
    """Plain text, escaped, with `code` between backticks shown as <code>."""
    return Markup(_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text))))


def on_screen(error: InvalidInput, labels: Mapping[str, str]) -> ScreenError:
    """The error as the form shows it; fields missing from `labels` keep their names."""
    words = {name: in_sentence(label) for name, label in labels.items()}
    return ScreenError(
        field=error.field,
        label=labels.get(error.field, error.field),
        message=as_html(relabel(error.message, words)),
    )
