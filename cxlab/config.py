"""Metric catalog and experiment configs (CONTRACT §2-3) as frozen, typed models.

One loader reads YAML with PyYAML, keeps each key's line number, and rejects unknown
keys, unknown types and inconsistent values with ``file:line``. The models are
hashable, so the app can cache on them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from cxlab.errors import ConfigError
from cxlab.metrics import TYPES

MetricType = Literal[
    "proportion", "mean", "ratio", "nps", "categorical", "time_to_event"
]
Aggregate = Literal["sum", "count", "max", "last"]
Direction = Literal["increase", "decrease"]
Decision = Literal["sequential", "fixed", "bayesian"]
Status = Literal["planned", "running", "stopped", "shipped", "rolled_back"]
SequentialMethod = Literal["mixture", "group"]
Correction = Literal["holm", "bh", "none"]
Format = Literal["percent", "number", "currency"]
Role = Literal["primary", "secondary", "guardrail"]

DEFAULT_ALPHA = 0.05
DEFAULT_SEQUENTIAL_TUNING = 5000
CANONICAL_COLUMNS = (
    "timestamp",
    "user_id",
    "event",
    "experiment_id",
    "variant",
    "value",
)
CATALOG_FILE = "metrics.yaml"
WEIGHT_TOLERANCE = 1e-6
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
ID_RULE = "1-64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
MAX_DEPTH = 32  # nesting levels of a config's YAML
MAX_COUNT = 10**12  # planned_users and sequential_tuning
MIN_CAP_PERCENTILE = 0.5  # a cap below the median would cap most users
MAX_INTEGER = 10**6  # any other whole number of a config (window_days, ...)
MAX_CUPED_DAYS = 365
PRIOR_LIMITS = (1e-6, 1e6)  # a prior's sd, and the bound of its |mean|
MAX_HORIZON_HOURS = 24 * 365  # a time-to-event horizon of at most a year

FilterValue = str | int | float | bool
Filter = tuple[tuple[str, FilterValue], ...]


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One side of a ratio metric: which events, aggregated how per user."""

    event: str
    aggregate: Aggregate = "count"
    filter: Filter = ()


@dataclass(frozen=True, slots=True)
class MetricDef:
    """A metric of the catalog (CONTRACT §2)."""

    id: str
    type: MetricType
    direction: Direction
    event: str | None = None
    aggregate: Aggregate = "sum"
    numerator: EventSpec | None = None
    denominator: EventSpec | None = None
    name: str = ""
    description: str = ""
    window_days: int | None = None
    filter: Filter = ()
    format: Format | None = None
    category: str | None = None  # categorical: the column holding the category
    start_event: str | None = None  # time_to_event: the clock starts
    end_event: str | None = None  # time_to_event: the clock stops
    horizon_hours: float | None = None  # time_to_event: restricted mean up to it
    cap: float | None = None  # mean: each user's value capped at this percentile

    @property
    def label(self) -> str:
        """Display name: ``name`` or the id."""
        return self.name or self.id

    @property
    def value_format(self) -> Format:
        """How to show values: the configured format or the type's natural one."""
        if self.format is not None:
            return self.format
        return TYPES[self.type].natural_format


@dataclass(frozen=True, slots=True)
class Variant:
    """An arm of an experiment and its planned share of users."""

    id: str
    weight: float


@dataclass(frozen=True, slots=True)
class BayesPrior:
    """Normal prior on the relative lift."""

    mean: float
    sd: float


@dataclass(frozen=True, slots=True)
class Experiment:
    """An experiment config (CONTRACT §3), with its metrics resolved by id."""

    id: str
    variants: tuple[Variant, ...]
    control: str
    start: dt.date
    primary_metrics: tuple[str, ...]
    name: str = ""
    hypothesis: str = ""
    owner: str = ""
    end: dt.date | None = None
    secondary_metrics: tuple[str, ...] = ()
    guardrail_metrics: tuple[str, ...] = ()
    alpha: float = DEFAULT_ALPHA
    decision: Decision = "sequential"
    dimensions: tuple[str, ...] = ()
    status: Status | None = None
    decision_note: str = ""
    planned_users: int | None = None
    sequential_tuning: int = DEFAULT_SEQUENTIAL_TUNING
    sequential_method: SequentialMethod = "mixture"
    bayes_prior: BayesPrior | None = None
    correction: Correction = "holm"
    cuped_days: int = 0
    guardrail_margin: float | None = None
    tags: tuple[str, ...] = ()
    columns: tuple[tuple[str, str], ...] = ()
    source: str = field(default="", compare=False)
    content_hash: str = ""

    @property
    def label(self) -> str:
        """Display name: ``name`` or the id."""
        return self.name or self.id

    @property
    def treatments(self) -> tuple[str, ...]:
        """Variant ids other than the control, in config order."""
        return tuple(v.id for v in self.variants if v.id != self.control)

    @property
    def variant_ids(self) -> tuple[str, ...]:
        """All variant ids, in config order."""
        return tuple(v.id for v in self.variants)

    @property
    def metric_roles(self) -> tuple[tuple[str, Role], ...]:
        """Every metric with its role, primary first, each metric once."""
        seen: set[str] = set()
        out: list[tuple[str, Role]] = []
        for ids, role in (
            (self.primary_metrics, "primary"),
            (self.secondary_metrics, "secondary"),
            (self.guardrail_metrics, "guardrail"),
        ):
            for metric_id in ids:
                if metric_id not in seen:
                    seen.add(metric_id)
                    out.append((metric_id, role))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Catalog:
    """The metric catalog: metric id → definition."""

    metrics: tuple[MetricDef, ...]
    source: str = field(default="", compare=False)

    def __getitem__(self, metric_id: str) -> MetricDef:
        for metric in self.metrics:
            if metric.id == metric_id:
                return metric
        raise KeyError(metric_id)

    def __contains__(self, metric_id: object) -> bool:
        return any(m.id == metric_id for m in self.metrics)

    @property
    def ids(self) -> tuple[str, ...]:
        """Metric ids in file order."""
        return tuple(m.id for m in self.metrics)


# --- YAML with line numbers -------------------------------------------------------


class _LineDict(dict):
    """A dict that remembers the 1-based line of itself and of each key."""

    line: int = 0
    key_lines: dict[Any, int]


class _Refused(yaml.YAMLError):
    """YAML that a config never needs, refused at the line where it starts."""

    def __init__(self, mark: yaml.Mark, message: str) -> None:
        super().__init__(message)
        self.line = mark.line + 1
        self.message = message


class _LineLoader(yaml.SafeLoader):
    """SafeLoader for configs: mappings carry line numbers; the risky parts fail.

    Aliases, anchors and explicit tags are refused as the parser meets them, before
    any node is built, so an alias bomb ("billion laughs") costs microseconds; so is
    nesting deeper than :data:`MAX_DEPTH`. The constructors refuse keys that are not
    scalars, keys given twice, merge keys, impossible dates and numbers that are not
    finite or do not fit 64 bits.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """Compose the next node, refusing aliases, anchors, tags and deep nesting."""
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event.start_mark, f"alias '*{event.anchor}' is not allowed")
        if event.anchor is not None:
            raise _Refused(event.start_mark, f"anchor '&{event.anchor}' is not allowed")
        if event.tag is not None:
            raise _Refused(event.start_mark, f"tag '{event.tag}' is not allowed")
        nested = isinstance(event, yaml.CollectionStartEvent)
        if nested:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _Refused(
                    event.start_mark, f"nested deeper than {MAX_DEPTH} levels"
                )
        node = super().compose_node(parent, index)
        if nested:
            self.depth -= 1
        return node


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    mapping = _LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _Refused(
                key_node.start_mark, "a key must be a name, not a collection"
            )
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise _Refused(key_node.start_mark, "merge key '<<' is not allowed")
        key = loader.construct_object(key_node)
        line = key_node.start_mark.line + 1
        if key in mapping.key_lines:
            first = mapping.key_lines[key]
            raise _Refused(
                key_node.start_mark, f"key '{key}' given twice (first on line {first})"
            )
        try:
            mapping[key] = loader.construct_object(value_node, deep=True)
        except _Refused as exc:
            if isinstance(value_node, yaml.ScalarNode):
                raise _Refused(value_node.start_mark, f"{key}: {exc.message}") from None
            raise
        mapping.key_lines[key] = line
    return mapping


def _construct_timestamp(loader: _LineLoader, node: yaml.ScalarNode) -> dt.date:
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError:
        raise _Refused(node.start_mark, f"{node.value} is not a date") from None


def _construct_float(loader: _LineLoader, node: yaml.ScalarNode) -> float:
    value = loader.construct_yaml_float(node)
    if not math.isfinite(value):
        raise _Refused(node.start_mark, f"{node.value} is not a finite number")
    return value


def _construct_int(loader: _LineLoader, node: yaml.ScalarNode) -> int:
    out_of_range = _Refused(node.start_mark, f"{node.value[:40]} is out of range")
    try:
        value = loader.construct_yaml_int(node)
    except ValueError:  # more digits than Python converts to an int
        raise out_of_range from None
    if abs(value) >= 2**63:
        raise out_of_range
    return value


def _construct_text(loader: _LineLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


for _tag, _constructor in (
    ("map", _construct_mapping),
    ("timestamp", _construct_timestamp),
    ("float", _construct_float),
    ("int", _construct_int),
    ("value", _construct_text),  # a plain '=' is YAML 1.1's "value" key: text here
):
    _LineLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _constructor)  # type: ignore[arg-type]


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            path,
            line,
            f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at byte {exc.start} "
            "(save the file as UTF-8)",
        ) from None


def parse_yaml(text: str, path: Path | str) -> Any:
    """Parse config YAML into line-aware data, the one way every config is read.

    Args:
        text: the YAML text.
        path: the file it comes from (or will be saved to), for error messages.

    Returns:
        Plain data whose mappings remember the line of each key.

    Raises:
        ConfigError: invalid YAML, or YAML refused by the loader (an alias, an
            anchor, a tag, a key given twice, a collection as a key, nesting deeper
            than :data:`MAX_DEPTH`, an impossible date, a number that is not
            finite), with ``file:line``.
    """
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except _Refused as exc:
        raise ConfigError(path, exc.line, exc.message) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            path, line, f"invalid YAML: character #x{exc.character:04x} is not allowed"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(path, line, f"invalid YAML: {problem}") from None


def _read_yaml(path: Path) -> tuple[Any, str]:
    """Parse a YAML file into line-aware data; return it and the text's hash."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read file: {exc.strerror}") from exc
    text = _decode(path, raw)
    return parse_yaml(text, path), hashlib.sha256(text.encode()).hexdigest()[:16]


def _kind(data: Any) -> str:
    if data is None:
        return "nothing (an empty file or value)"
    if isinstance(data, list):
        return "a list"
    return f"the value {data!r}"[:80]


class _Fields:
    """Typed access to one YAML mapping, raising ConfigError with file:line."""

    def __init__(self, path: Path, data: Any, what: str, line: int | None = None):
        if not isinstance(data, dict):
            raise ConfigError(
                path, line, f"{what} must be a mapping of keys, got {_kind(data)}"
            )
        self.path = path
        self.data = data
        self.what = what
        self.line = getattr(data, "line", line)

    def line_of(self, key: str) -> int | None:
        lines = getattr(self.data, "key_lines", {})
        return lines.get(key, self.line)

    def error(self, key: str | None, message: str) -> ConfigError:
        line = self.line_of(key) if key is not None else self.line
        return ConfigError(self.path, line, message)

    def reject_unknown(self, allowed: AbstractSet[str]) -> None:
        for key in self.data:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                raise self.error(
                    key, f"unknown key '{key}' in {self.what} (allowed: {known})"
                )

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def text(self, key: str, default: str | None = None) -> str:
        if not self.has(key):
            if default is None:
                raise self.error(None, f"{self.what} needs '{key}'")
            return default
        value = self.data[key]
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise self.error(key, f"'{key}' must be text, got {value!r}")
        return str(value)

    def choice(self, key: str, options: Any, default: str | None = None) -> Any:
        allowed = get_args(options)
        value = self.text(key, default)
        if value not in allowed:
            raise self.error(
                key,
                f"'{key}' must be one of {' | '.join(allowed)}, got '{value}'",
            )
        return value

    def integer(
        self,
        key: str,
        default: int | None,
        *,
        minimum: int,
        maximum: int = MAX_INTEGER,
    ) -> int | None:
        if not self.has(key):
            return default
        value = self.data[key]
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not minimum <= value <= maximum
        ):
            raise self.error(
                key,
                f"'{key}' must be a whole number from {minimum} to {maximum:,}, "
                f"got {value!r}",
            )
        return value

    def number(self, key: str, default: float) -> float:
        if not self.has(key):
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"'{key}' must be a number, got {value!r}")
        return float(value)

    def date(self, key: str, *, required: bool) -> dt.date | None:
        if not self.has(key):
            if required:
                raise self.error(None, f"{self.what} needs '{key}'")
            return None
        value = self.data[key]
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise self.error(
                key, f"'{key}' must be a date YYYY-MM-DD, got {value!r}"
            ) from None

    def identifier(self, key: str, value: Any, what: str) -> str:
        if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
            raise self.error(key, f"invalid {what} id {value!r}: ids are {ID_RULE}")
        return value

    def text_list(self, key: str) -> tuple[str, ...]:
        if not self.has(key):
            return ()
        value = self.data[key]
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"'{key}' must be a list of names")
        return tuple(value)


# --- metric catalog ----------------------------------------------------------------

_METRIC_COMMON = frozenset(
    {"type", "direction", "name", "description", "window_days", "filter", "format"}
)


def _parse_filter(fields: _Fields, key: str = "filter") -> Filter:
    if not fields.has(key):
        return ()
    raw = fields.data[key]
    if not isinstance(raw, dict) or not raw:
        raise fields.error(key, f"'{key}' must be a mapping of column: value")
    pairs: list[tuple[str, FilterValue]] = []
    for column, value in raw.items():
        if not isinstance(column, str) or column in CANONICAL_COLUMNS:
            raise fields.error(
                key, f"'{key}' can only test dimension columns, not {column!r}"
            )
        if not isinstance(value, str | int | float | bool):
            raise fields.error(key, f"'{key}.{column}' must be a single value")
        pairs.append((column, value))
    return tuple(sorted(pairs, key=lambda pair: pair[0]))


def _parse_event_spec(path: Path, data: Any, what: str, line: int | None) -> EventSpec:
    fields = _Fields(path, data, what, line)
    fields.reject_unknown({"event", "aggregate", "filter"})
    return EventSpec(
        event=fields.text("event"),
        aggregate=fields.choice("aggregate", Aggregate, "count"),
        filter=_parse_filter(fields),
    )


def _parse_metric(path: Path, metric_id: str, data: Any, line: int | None) -> MetricDef:
    fields = _Fields(path, data, f"metric '{metric_id}'", line)
    metric_type = fields.choice("type", MetricType)
    keys = TYPES[metric_type].config_keys
    fields.reject_unknown(_METRIC_COMMON | keys)
    window_days = fields.integer("window_days", None, minimum=1)
    common: dict[str, Any] = {
        "id": metric_id,
        "type": metric_type,
        "direction": fields.choice("direction", Direction),
        "name": fields.text("name", ""),
        "description": fields.text("description", ""),
        "window_days": window_days,
        "filter": _parse_filter(fields),
        "format": fields.choice("format", Format) if fields.has("format") else None,
    }
    if "numerator" in keys:  # two sides, each its own events
        for key in ("numerator", "denominator"):
            if not fields.has(key):
                raise fields.error(
                    None, f"{metric_type} metric '{metric_id}' needs '{key}'"
                )
        return MetricDef(
            **common,
            numerator=_parse_event_spec(
                path,
                data["numerator"],
                f"{metric_id}.numerator",
                fields.line_of("numerator"),
            ),
            denominator=_parse_event_spec(
                path,
                data["denominator"],
                f"{metric_id}.denominator",
                fields.line_of("denominator"),
            ),
        )
    if "horizon_hours" in keys:  # time to event: two events and a horizon
        horizon = fields.number("horizon_hours", math.nan)
        if not 0 < horizon <= MAX_HORIZON_HOURS:
            raise fields.error(
                "horizon_hours",
                f"'horizon_hours' must be a number in (0, {MAX_HORIZON_HOURS}]",
            )
        return MetricDef(
            **common,
            start_event=fields.text("start_event"),
            end_event=fields.text("end_event"),
            horizon_hours=horizon,
        )
    aggregate = (
        fields.choice("aggregate", Aggregate, "sum") if "aggregate" in keys else "sum"
    )
    category = fields.text("category") if "category" in keys else None
    if category in CANONICAL_COLUMNS:
        raise fields.error(
            "category", f"'category' must be a dimension column, not {category!r}"
        )
    return MetricDef(
        **common,
        event=fields.text("event"),
        aggregate=aggregate,
        category=category,
        cap=_parse_cap(fields) if "cap" in keys else None,
    )


def _parse_cap(fields: _Fields) -> float | None:
    """A mean metric's ``cap: {percentile: p}``, p in (0.5, 1) (CONTRACT §2)."""
    if not fields.has("cap"):
        return None
    cap = _Fields(
        fields.path, fields.data["cap"], f"{fields.what}.cap", fields.line_of("cap")
    )
    cap.reject_unknown({"percentile"})
    percentile = cap.number("percentile", math.nan)
    if not MIN_CAP_PERCENTILE < percentile < 1:
        raise cap.error(
            "percentile" if cap.has("percentile") else None,
            f"'cap' needs 'percentile', a number in ({MIN_CAP_PERCENTILE}, 1)",
        )
    return percentile


def load_catalog(path: Path | str) -> Catalog:
    """Load and validate the metric catalog (CONTRACT §2).

    Args:
        path: the ``metrics.yaml`` file.

    Returns:
        The catalog, metrics in file order.

    Raises:
        ConfigError: unknown keys or types, missing fields, naming ``file:line``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, None, "metric catalog not found")
    data, _ = _read_yaml(path)
    fields = _Fields(path, data, "metric catalog", 1)
    metrics = []
    for metric_id, spec in data.items():
        fields.identifier(metric_id, metric_id, "metric")
        metrics.append(_parse_metric(path, metric_id, spec, fields.line_of(metric_id)))
    if not metrics:
        raise ConfigError(path, 1, "the metric catalog defines no metrics")
    return Catalog(tuple(metrics), source=str(path))


# --- experiments -------------------------------------------------------------------

_EXPERIMENT_KEYS = {
    "id", "name", "hypothesis", "owner", "start", "end", "variants", "control",
    "primary_metric", "secondary_metrics", "guardrail_metrics", "alpha", "decision",
    "dimensions", "status", "decision_note", "planned_users", "sequential_tuning",
    "sequential_method", "bayes_prior", "correction", "cuped_days", "tags", "columns",
    "guardrail_margin",
}  # fmt: skip


def _parse_variants(fields: _Fields) -> tuple[Variant, ...]:
    raw = fields.data.get("variants")
    if not isinstance(raw, list) or len(raw) < 2:
        raise fields.error("variants", "'variants' must list at least two arms")
    parsed: list[tuple[str, float | None]] = []
    for item in raw:
        if not isinstance(item, dict):
            parsed.append((fields.identifier("variants", item, "variant"), None))
            continue
        arm = _Fields(fields.path, item, "a variant", fields.line_of("variants"))
        arm.reject_unknown({"id", "weight"})
        weight = arm.number("weight", math.nan) if arm.has("weight") else None
        if weight is not None and not 0 < weight < 1:
            raise arm.error("weight", "a variant's weight must be between 0 and 1")
        parsed.append((arm.identifier("id", arm.text("id"), "variant"), weight))
    ids = [variant_id for variant_id, _ in parsed]
    duplicates = sorted({v for v in ids if ids.count(v) > 1})
    if duplicates:
        raise fields.error(
            "variants", f"duplicate variant id(s): {', '.join(duplicates)}"
        )
    weights = [w for _, w in parsed]
    if all(w is None for w in weights):
        weights = [1 / len(parsed)] * len(parsed)
    elif any(w is None for w in weights):
        raise fields.error("variants", "give a weight for every variant or for none")
    total = math.fsum(w for w in weights if w is not None)
    if abs(total - 1) > WEIGHT_TOLERANCE:
        raise fields.error("variants", f"variant weights must sum to 1, got {total:g}")
    return tuple(Variant(v, float(w)) for v, w in zip(ids, weights, strict=True))  # type: ignore[arg-type]


def _parse_prior(fields: _Fields) -> BayesPrior | None:
    if not fields.has("bayes_prior"):
        return None
    prior = _Fields(
        fields.path,
        fields.data["bayes_prior"],
        "bayes_prior",
        fields.line_of("bayes_prior"),
    )
    prior.reject_unknown({"mean", "sd"})
    low, high = PRIOR_LIMITS
    sd = prior.number("sd", math.nan)
    if not low <= sd <= high:  # a positive 'sd' whose square is a normal float
        raise prior.error(
            "sd", f"bayes_prior needs a positive 'sd' from {low:g} to {high:g}"
        )
    mean = prior.number("mean", 0.0)
    if not abs(mean) <= high:
        raise prior.error("mean", f"bayes_prior's 'mean' must be within ±{high:g}")
    return BayesPrior(mean=mean, sd=sd)


def _parse_columns(fields: _Fields) -> tuple[tuple[str, str], ...]:
    if not fields.has("columns"):
        return ()
    raw = fields.data["columns"]
    if not isinstance(raw, dict):
        raise fields.error(
            "columns", "'columns' must map contract names to log columns"
        )
    for canonical, source in raw.items():
        if canonical not in CANONICAL_COLUMNS:
            raise fields.error(
                "columns",
                f"'columns' maps unknown column '{canonical}' "
                f"(allowed: {', '.join(CANONICAL_COLUMNS)})",
            )
        if not isinstance(source, str) or not source:
            raise fields.error(
                "columns", f"'columns.{canonical}' must be a column name"
            )
    sources = list(raw.values())
    for source in sources:
        if sources.count(source) > 1:
            both = " and ".join(k for k, v in raw.items() if v == source)
            raise fields.error(
                "columns", f"'columns' maps {both} onto the one column '{source}'"
            )
    return tuple(sorted((str(k), str(v)) for k, v in raw.items()))


def parse_experiment(
    path: Path, data: Any, catalog: Catalog, digest: str = ""
) -> Experiment:
    """Validate one experiment's YAML data against CONTRACT §3 and the catalog."""
    fields = _Fields(path, data, "experiment", 1)
    fields.reject_unknown(_EXPERIMENT_KEYS)
    experiment_id = fields.identifier(
        "id",
        fields.text("id", path.stem),
        "experiment" if fields.has("id") else "experiment (from the file name)",
    )
    variants = _parse_variants(fields)
    variant_ids = [v.id for v in variants]
    control = fields.text("control", variants[0].id)
    if control not in variant_ids:
        raise fields.error("control", f"control '{control}' is not one of the variants")
    start = fields.date("start", required=True)
    end = fields.date("end", required=False)
    assert start is not None
    if end is not None and end < start:
        raise fields.error("end", f"end {end} is before start {start}")
    primary = fields.text_list("primary_metric")
    if not primary:
        raise fields.error(None, "experiment needs 'primary_metric'")
    for key in ("primary_metric", "secondary_metrics", "guardrail_metrics"):
        for metric_id in fields.text_list(key):
            if metric_id not in catalog:
                raise fields.error(
                    key,
                    f"metric '{metric_id}' is not in the catalog {catalog.source}",
                )
    alpha = fields.number("alpha", DEFAULT_ALPHA)
    if not 0 < alpha <= 0.5:
        raise fields.error("alpha", f"'alpha' must be between 0 and 0.5, got {alpha:g}")
    tuning = fields.integer(
        "sequential_tuning", DEFAULT_SEQUENTIAL_TUNING, minimum=2, maximum=MAX_COUNT
    )
    margin = fields.number("guardrail_margin", math.nan)
    if fields.has("guardrail_margin") and not 0 < margin < 1:
        raise fields.error(
            "guardrail_margin",
            f"'guardrail_margin' must be a relative margin in (0, 1), got {margin:g}",
        )
    return Experiment(
        id=experiment_id,
        name=fields.text("name", ""),
        hypothesis=fields.text("hypothesis", ""),
        owner=fields.text("owner", ""),
        start=start,
        end=end,
        variants=variants,
        control=control,
        primary_metrics=primary,
        secondary_metrics=fields.text_list("secondary_metrics"),
        guardrail_metrics=fields.text_list("guardrail_metrics"),
        alpha=alpha,
        decision=fields.choice("decision", Decision, "sequential"),
        dimensions=fields.text_list("dimensions"),
        status=fields.choice("status", Status) if fields.has("status") else None,
        decision_note=fields.text("decision_note", ""),
        planned_users=fields.integer(
            "planned_users", None, minimum=2, maximum=MAX_COUNT
        ),
        sequential_tuning=tuning if tuning is not None else DEFAULT_SEQUENTIAL_TUNING,
        sequential_method=fields.choice(
            "sequential_method", SequentialMethod, "mixture"
        ),
        bayes_prior=_parse_prior(fields),
        correction=fields.choice("correction", Correction, "holm"),
        cuped_days=fields.integer("cuped_days", 0, minimum=0, maximum=MAX_CUPED_DAYS)
        or 0,
        guardrail_margin=margin if fields.has("guardrail_margin") else None,
        tags=fields.text_list("tags"),
        columns=_parse_columns(fields),
        source=str(path),
        content_hash=digest,
    )


def load_experiment(path: Path | str, catalog: Catalog) -> Experiment:
    """Load and validate one experiment YAML file.

    Raises:
        ConfigError: naming ``file:line`` of the first problem.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, None, "experiment config not found")
    data, digest = _read_yaml(path)
    return parse_experiment(path, data, catalog, digest)


def experiment_files(folder: Path | str) -> list[Path]:
    """Experiment YAML files in a folder (every *.yaml / *.yml but the catalog)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(folder, None, "experiments folder not found")
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return [f for f in files if f.name not in (CATALOG_FILE, "metrics.yml")]


def load_experiments(folder: Path | str, catalog: Catalog) -> list[Experiment]:
    """Load every experiment of a folder, sorted by id; ids must be unique.

    Raises:
        ConfigError: the first file, in file order, that does not load.
    """
    experiments, errors = load_experiments_each(folder, catalog)
    if errors:
        raise errors[0]
    return experiments


class DuplicateIdError(ConfigError):
    """An experiment file whose id another file of the folder already uses."""

    def __init__(
        self, file: Path | str, line: int | None, message: str, experiment_id: str
    ) -> None:
        super().__init__(file, line, message)
        self.experiment_id = experiment_id

    def __reduce__(self) -> tuple[type[DuplicateIdError], tuple]:
        return DuplicateIdError, (self.file, self.line, self.detail, self.experiment_id)


def load_experiments_each(
    folder: Path | str, catalog: Catalog
) -> tuple[list[Experiment], list[ConfigError]]:
    """Load each experiment of a folder on its own, so one broken file stays local.

    Args:
        folder: the experiments folder.
        catalog: the metric catalog.

    Returns:
        The experiments that load, sorted by id, and the error of every file that
        does not (bad YAML, an unknown key or metric, an id another file already
        uses), in file order, each naming ``file:line``.

    Raises:
        ConfigError: the folder does not exist.
    """
    experiments: list[Experiment] = []
    errors: list[ConfigError] = []
    seen: dict[str, str] = {}
    for path in experiment_files(folder):
        try:
            exp = load_experiment(path, catalog)
        except ConfigError as exc:
            errors.append(exc)
            continue
        if exp.id in seen:
            message = f"experiment id '{exp.id}' is also used by {seen[exp.id]}"
            errors.append(
                DuplicateIdError(exp.source, _line_of_id(path), message, exp.id)
            )
            continue
        seen[exp.id] = exp.source
        experiments.append(exp)
    return sorted(experiments, key=lambda e: e.id), errors


def _line_of_id(path: Path) -> int:
    """The line of a loadable experiment file's ``id`` key (1 without one)."""
    data, _ = _read_yaml(path)
    return data.key_lines.get("id", 1)


def find_experiment(ref: str, folder: Path | str, catalog: Catalog) -> Experiment:
    """Resolve a CLI reference: a config file's path or an experiment id.

    A broken config elsewhere in the folder does not stop another experiment;
    the experiment's own broken file (by its name) is reported as it is.
    """
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return load_experiment(path, catalog)
    experiments, errors = load_experiments_each(folder, catalog)
    for error in errors:  # an id used twice is ambiguous
        if isinstance(error, DuplicateIdError) and error.experiment_id == ref:
            raise error
    for exp in experiments:
        if exp.id == ref:
            return exp
    for error in errors:  # its own broken file
        if Path(error.file).stem == ref:
            raise error
    unread = f"; {len(errors)} config file(s) could not be read" if errors else ""
    raise ConfigError(folder, None, f"no experiment with id or file '{ref}'{unread}")


def as_yaml_mapping(data: Mapping[str, Any]) -> str:
    """Dump plain data as block YAML in key order (for the config studio)."""
    return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)
