"""The New-run form: rendered from the engine's field specs, read back into a config.

Every RunConfig field appears, in the engine's order, in one of the groups a learner thinks
in (data; model and initialisation; strategy; loss and sampling; augmentation; optimisation;
precision and device), with its default, its allowed values, the engine's help text, and a
link to the part of the answer that explains the choice. A field the engine adds later
appears in its own group without a change here.

Numbers typed into the form follow the one rule for typed numbers (app.worker.numbers); the
engine's `RunConfig.from_dict` then checks ranges and combinations, and its InvalidInput is
shown beside the field it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from app.datasets.runs import SPEC as DATASET_ID
from app.inputs import storable
from app.runs.choices import BASIC, HINTS, Option, label, read_choice
from app.worker.errors import InvalidInput
from app.worker.numbers import parse_float, parse_int
from app.worker.training import FieldSpec, RunConfig

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
}
# Fields the data set choice stands for in the web form (they stay readable from a query).
HIDDEN = {"folder", DATASET_ID.name}


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
    options: list[Option] = field(default_factory=list)  # a select's choices, when not the spec's
    maximum: float | None = None  # this server's limit where it is below the engine's

    @property
    def label(self) -> str:
        return label(self.spec.name)

    @property
    def allowed(self) -> str:
        """The values allowed here (the server's limit where it is lower than the engine's)."""
        if self.maximum is not None:
            return f"{self.spec.minimum:g} to {self.maximum:g} here"
        return self.spec.allowed()

    @property
    def hint(self) -> str:
        """The field's help: the engine's, or shorter words where the choices say it."""
        return HINTS.get(self.spec.name, self.spec.help)

    @property
    def note(self) -> str | None:
        if self.spec.name == "init" and self.options:
            return None  # the choices are the ones allowed here
        return WEB_NOTES.get(self.spec.name)

    @property
    def disabled_reasons(self) -> list[tuple[str, str]]:
        return [(o.short, o.disabled) for o in self.options if o.disabled]

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
    options: Mapping[str, list[Option]],
    limits: Mapping[str, int] | None = None,
) -> list[FormGroup]:
    """The form's groups in order: "basic" (the fields most runs change, `BASIC`), then the
    engine's groups with the rest, each field with its current value and message.

    `options` replaces a select's choices (the data set by name, starting weights, what this
    server can run); `limits` lowers a field's stated maximum to this server's limit. The data
    set choice stands for `folder` and `dataset_id`, which are not shown.
    """
    basic = FormGroup("basic", "The run", [])
    groups = {key: FormGroup(key, heading, []) for key, heading in GROUPS}
    by_name: dict[str, FormField] = {}
    for spec in form_specs():
        if spec.name in HIDDEN:
            continue
        key = form_group(spec)
        if key not in groups:
            groups[key] = FormGroup(key, key.capitalize(), [])
        maximum = (limits or {}).get(spec.name)
        if maximum is not None and spec.maximum is not None and maximum >= spec.maximum:
            maximum = None
        choices = list(options.get(spec.name, []))
        if not choices and spec.choices:
            choices = [Option(str(c), str(c)) for c in spec.choices]
        current = str(values.get(spec.name, spec.default))
        if choices and current and current not in {o.value for o in choices}:
            choices.append(Option(current, current))
        for option in choices:  # the chosen value stays choosable, so its message shows
            if option.value == current:
                option.disabled = None
        by_name[spec.name] = FormField(
            spec=spec,
            value=values.get(spec.name, spec.default_for(dict(values))),
            error=errors.get(spec.name),
            link=help_link(spec),
            options=choices,
            maximum=maximum,
        )
        if spec.name not in BASIC:
            groups[key].fields.append(by_name[spec.name])
    basic.fields = [by_name[name] for name in BASIC if name in by_name]
    return [basic] + [group for group in groups.values() if group.fields]


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
    shown = form.get("dataset")
    form = read_choice(form)
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
    if isinstance(shown, str):
        typed["dataset"] = shown  # the choice as the form offers it (upload:<id>, folder:<path>)
    return typed, values, errors


def config_or_errors(values: dict[str, Any], errors: dict[str, str]) -> RunConfig | None:
    """The config if the typed values make one; otherwise None with the engine's message added
    to `errors` under the field it names."""
    if errors:
        return None
    try:
        return RunConfig.from_dict(values)
    except InvalidInput as error:
        errors[error.field] = error.message
        return None


def changed_fields(config: RunConfig) -> dict[str, Any]:
    """The fields whose value differs from the default, in the engine's order."""
    return {
        spec.name: getattr(config, spec.name)
        for spec in RunConfig.fields()
        if getattr(config, spec.name) != spec.default_for(config)
    }


def _named_folder(text: str, config: RunConfig, names: Mapping[str, str] | None) -> str:
    """`text` with an uploaded folder's line followed by its data set's name as a comment
    (`names`: folder → name), so the learner sees which of their data sets it is."""
    name = (names or {}).get(config.folder or "")
    if not name:
        return text
    shown = name.replace("\n", " ")
    return text.replace(
        f"folder: {config.folder}\n", f"folder: {config.folder}  # your data set '{shown}'\n", 1
    )


def config_yaml(config: RunConfig, names: Mapping[str, str] | None = None) -> str:
    """The config as a YAML file for `cvprep train`: the fields that differ from the defaults
    (an uploaded folder named as in `full_yaml`)."""
    changed = changed_fields(config)
    head = "# cvprep train run.yaml (every field not listed takes its default)\n"
    if not changed:
        return head + "{}\n"
    return head + _named_folder(
        yaml.safe_dump(changed, sort_keys=False, allow_unicode=True), config, names
    )


def full_yaml(config: RunConfig, names: Mapping[str, str] | None = None) -> str:
    """Every field of the config as YAML (a run's page shows what it ran with, defaults too);
    an uploaded folder is followed by its data set's name as a comment (`names`: folder →
    name)."""
    text = yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True)
    return _named_folder(text, config, names)


def train_command(config: RunConfig, names: Mapping[str, str] | None = None) -> str:
    """A shell command that writes the YAML above to run.yaml and trains it headless."""
    changed = changed_fields(config)
    body = yaml.safe_dump(changed, sort_keys=False, allow_unicode=True) if changed else "{}\n"
    return (
        f"cat > run.yaml <<'YAML'\n{_named_folder(body, config, names)}YAML\ncvprep train run.yaml"
    )


def query_values(params: Mapping[str, str]) -> dict[str, Any]:
    """Field values given in a URL's query (a prefilled link, the form's Preview button)."""
    names = {spec.name for spec in form_specs()}
    return {key: value for key, value in params.items() if key in names}
