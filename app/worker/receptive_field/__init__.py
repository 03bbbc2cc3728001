"""Receptive fields: which input pixels one output value can depend on.

- `closed_form`: the textbook formulas along one axis, a chain of conv/pool layers
  (`receptive_field`) and one transposed convolution (`conv_transpose_receptive_field`);
- `spans`: the input positions each output position reads along one axis (`Span`), exact
  through strides, dilations and transposed convolutions;
- `tracker`: `ReceptiveFieldTracker`, which follows spans through any model's forward pass.
"""

from app.worker.receptive_field.closed_form import conv_transpose_receptive_field, receptive_field
from app.worker.receptive_field.spans import Span, TooIrregular, union
from app.worker.receptive_field.tracker import (
    UNKNOWN,
    WHOLE,
    Field,
    ReceptiveFieldTracker,
    input_field,
)

__all__ = [
    "UNKNOWN",
    "WHOLE",
    "Field",
    "ReceptiveFieldTracker",
    "Span",
    "TooIrregular",
    "conv_transpose_receptive_field",
    "input_field",
    "receptive_field",
    "union",
]
