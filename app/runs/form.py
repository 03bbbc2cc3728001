"""The New-run form: rendered from the engine's field specs, read back into a config.

Every RunConfig field appears, in the engine's order, in one of the groups a learner thinks
in (data; model and initialisation; strategy; loss and sampling; augmentation; optimisation;
precision and device), with its default, its allowed values, the engine's help text, and a
link to the part of the answer that explains the choice. A field the engine adds later
appears in its own group without a change here.

Numbers typed into the form follow the one rule for typed numbers (app.worker.numbers); the
engine's `RunConfig.from_dict` then checks ranges and combinations, and its ConfigError is
shown beside the field it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from app.datasets.runs import SPEC as DATASET_ID
from app.inputs import storable
from app.worker.errors import InvalidInput
from app.worker.numbers import parse_float, parse_int
from app.worker.training import ConfigError, FieldSpec, RunConfig

# (key, heading). The engine's groups are data, model, init, loss, augment, optim, runtime.
GROUPS = (
    ("data", "Data"),
    ("model", "Model and initialisation"),
    ("strategy", "Strategy"),
    ("loss", "Loss and sampling"),
    ("augment", "Augmentation"),
    ("optim", "Optimisation"),
    ("runtime", "Precision and device"),
)
# Fields shown in another group than the engine's own.
FORM_GROUP = {
    "init": "model",
    "strategy": "strategy",
    "unfreeze_stages": "strategy",
    "backbone_lr_mult": "strategy",
}
# The question (slug, heading anchor) that explains each choice; a group's entry covers the
# fields not named. The tests check every anchor exists in its answer.
GROUP_HELP = {
    "data": ("training-loop", "real-data"),
    "model": ("architecture-evolution", "the-architectures-in-numbers"),
    "strategy": ("transfer-learning", "the-strategies-from-cheapest-to-most-flexible"),
    "loss": ("class-imbalance", "re-weighting-the-loss"),
    "augment": ("data-augmentation", "techniques-and-when-each-helps"),
    "optim": ("training-loop", "design-decisions-piece-by-piece"),
    "runtime": ("training-loop", "design-decisions-piece-by-piece"),
}
FIELD_HELP = {
    "first_class": ("transfer-learning", "the-strategies-from-cheapest-to-most-flexible"),
    "loop": ("training-loop", "real-data"),
    "eval_train": ("data-augmentation", "techniques-and-when-each-helps"),
    "imbalance_ratio": ("class-imbalance", "first-measure-the-right-thing"),
    "val_fraction": ("evaluation-metrics", "accuracy-its-trap-and-top-k"),
    "batch_norm": ("batch-normalization", "what-it-computes"),
    "residual": ("residual-connections", "the-block"),
    "depth": ("residual-connections", "the-degradation-problem"),
    "width": ("convolutional-layers", "parameters-and-compute"),
    "downsample": ("pooling", "strided-convolution-as-learned-downsampling"),
    "init": ("transfer-learning", "the-strategies-from-cheapest-to-most-flexible"),
    "backbone_lr_mult": ("transfer-learning", "details-that-decide-whether-it-works"),
    "focal_gamma": ("class-imbalance", "focal-loss"),
    "focal_alpha": ("class-imbalance", "focal-loss"),
    "sampler": ("class-imbalance", "re-sampling-with-weightedrandomsampler"),
    "mixup_alpha": ("data-augmentation", "mixup-and-cutmix-in-detail"),
    "cutmix_alpha": ("data-augmentation", "mixup-and-cutmix-in-detail"),
    "max_misclassified": ("evaluation-metrics", "confusion-matrix-and-per-class-metrics"),
}


# What the web allows where the engine (and the command line) allows more.
WEB_NOTES = {
    "init": "Here: scratch, imagenet, or one of your runs that has a checkpoint.",
    "folder": "A folder on the server, under DATA_DIR/datasets.",
    "dataset_id": "Upload a zip of class folders under Data sets.",
}


def help_link(spec: FieldSpec) -> tuple[str, str] | None:
    """(slug, anchor) of the answer section behind a field."""
    return FIELD_HELP.get(spec.name) or GROUP_HELP.get(form_group(spec))


def form_group(spec: FieldSpec) -> str:
    return FORM_GROUP.get(spec.name, spec.group)


@dataclass
class FormField:
    spec: FieldSpec
    value: Any  # as typed (text), or a bool for a checkbox
    error: str | None
    link: tuple[str, str] | None
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label) of a select

    @property
    def note(self) -> str | None:
        return WEB_NOTES.get(self.spec.name)

    @property
    def kind(self) -> str:
        if self.options or self.spec.choices:
            return "select"
        return {"bool": "checkbox", "int": "number", "float": "number"}.get(self.spec.type, "text")

    @property
    def step(self) -> str:
        return "1" if self.spec.type == "int" else "any"


@dataclass
class FormGroup:
    key: str
    heading: str
    fields: list[FormField]


def display_values(config: dict[str, Any]) -> dict[str, Any]:
    """A config's values as the form shows them: text for numbers and strings, bools as is."""
    shown: dict[str, Any] = {}
    for spec in form_specs():
        value = config.get(spec.name, spec.default_for(config))
        if spec.type == "bool":
            shown[spec.name] = bool(value)
        elif value is None:
            shown[spec.name] = ""
        elif isinstance(value, float):
            shown[spec.name] = f"{value:g}"
        else:
            shown[spec.name] = str(value)
    return shown


def form_groups(
    values: Mapping[str, Any],
    errors: Mapping[str, str],
    init_options: list[tuple[str, str]],
    dataset_options: list[tuple[str, str]] | None = None,
) -> list[FormGroup]:
    """The form's groups in order, each with its fields' current values and messages.

    `dataset_options` (the caller's uploaded data sets) adds the `dataset_id` choice after
    `folder`."""
    groups = {key: FormGroup(key, heading, []) for key, heading in GROUPS}
    for spec in form_specs(dataset_options is not None):
        key = form_group(spec)
        if key not in groups:
            groups[key] = FormGroup(key, key.capitalize(), [])
        options: list[tuple[str, str]] = []
        if spec.name == DATASET_ID.name:
            options = list(dataset_options or [])
        if spec.name == "init":
            options = list(init_options)
            current = str(values.get("init", spec.default))
            if current and current not in {value for value, _ in options}:
                options.append((current, current))
        groups[key].fields.append(
            FormField(
                spec=spec,
                value=values.get(spec.name, spec.default_for(dict(values))),
                error=errors.get(spec.name),
                link=help_link(spec),
                options=options,
            )
        )
    return [group for group in groups.values() if group.fields]


def form_specs(with_dataset_id: bool = True) -> list[FieldSpec]:
    """The engine's fields, with the `dataset_id` choice after `folder`."""
    specs: list[FieldSpec] = []
    for spec in RunConfig.fields():
        specs.append(spec)
        if spec.name == "folder" and with_dataset_id:
            specs.append(DATASET_ID)
    return specs


def read_form(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """(values as typed, config values, messages by field) from a submitted form.

    A checkbox is true when sent ("true" or "on"), false when absent. Numbers are read by the
    one rule for typed numbers; every field with a bad value gets its message, so all are
    shown at once. The engine's own checks come after (`RunConfig.from_dict`).
    """
    typed: dict[str, Any] = {}
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in form_specs():
        raw = form.get(spec.name)
        if spec.type == "bool":
            typed[spec.name] = values[spec.name] = raw in ("true", "on")
            continue
        text = raw if isinstance(raw, str) else ""
        typed[spec.name] = text
        if spec.default_by is not None and not text.strip():
            continue  # left empty: the engine takes the default for the field it depends on
        try:
            text = storable(text)
            if spec.type == "int":
                values[spec.name] = parse_int(text, field=spec.name)
            elif spec.type == "float":
                values[spec.name] = parse_float(text, field=spec.name)
            else:
                values[spec.name] = text.strip()
        except InvalidInput as error:
            errors[spec.name] = error.message
        except ValueError as error:
            errors[spec.name] = str(error)
    return typed, values, errors


def config_or_errors(values: dict[str, Any], errors: dict[str, str]) -> RunConfig | None:
    """The config if the typed values make one; otherwise None with the engine's message added
    to `errors` under the field it names."""
    if errors:
        return None
    try:
        return RunConfig.from_dict(values)
    except ConfigError as error:
        errors[error.field] = error.reason
        return None


def changed_fields(config: RunConfig) -> dict[str, Any]:
    """The fields whose value differs from the default, in the engine's order."""
    return {
        spec.name: getattr(config, spec.name)
        for spec in RunConfig.fields()
        if getattr(config, spec.name) != spec.default_for(config)
    }


def config_yaml(config: RunConfig) -> str:
    """The config as a YAML file for `cvprep train`: the fields that differ from the defaults."""
    changed = changed_fields(config)
    head = "# cvprep train run.yaml (every field not listed takes its default)\n"
    if not changed:
        return head + "{}\n"
    return head + yaml.safe_dump(changed, sort_keys=False, allow_unicode=True)


def train_command(config: RunConfig) -> str:
    """A shell command that writes the YAML above to run.yaml and trains it headless."""
    changed = changed_fields(config)
    body = yaml.safe_dump(changed, sort_keys=False, allow_unicode=True) if changed else "{}\n"
    return f"cat > run.yaml <<'YAML'\n{body}YAML\ncvprep train run.yaml"


def query_values(params: Mapping[str, str]) -> dict[str, Any]:
    """Field values given in a URL's query (a prefilled link, the form's Preview button)."""
    names = {spec.name for spec in form_specs()}
    return {key: value for key, value in params.items() if key in names}
