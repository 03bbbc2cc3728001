"""A demo's error in the words of its form: the label on screen instead of the field's name.

The worker names fields as the JSON API does (`kernel_size`, `in_channels`); a person sees
"Kernel" and "Channels". `on_screen` rewrites a worker error for a form: the label of the field
at fault, the message with every field name it mentions put in the form's words, and text
written between backticks shown as code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup, escape

from app.worker.errors import InvalidInput, relabel

_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class ScreenError:
    """What a form shows for an InvalidInput. `field` is the control's name (to mark it)."""

    field: str
    label: str
    message: Markup


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
