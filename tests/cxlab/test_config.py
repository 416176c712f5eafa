"""Metric catalog and experiment configs (CONTRACT §2-3): what parses, what is refused.

Every refusal is a ConfigError naming ``file:line``; the line numbers below are counted
by hand in the YAML text of each test (line 1 is the first line of the text).
"""

from __future__ import annotations

import datetime as dt
import pickle
import textwrap

import pytest

from cxlab.config import (
    BayesPrior,
    EventSpec,
    Variant,
    find_experiment,
    load_catalog,
    load_experiment,
    load_experiments,
    load_experiments_each,
)
from cxlab.errors import ConfigError, InputError

EXPERIMENT_HEAD = """\
id: exp
start: 2026-10-01
end: 2026-10-05
variants:
  - {id: control, weight: 0.5}
  - {id: treatment, weight: 0.5}
primary_metric: conversion
"""


def write(path, text: str):
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def catalog(lab):
    return load_catalog(lab.catalog_path)


def load_exp(lab, catalog, text: str):
    return load_experiment(write(lab.experiments_dir / "exp.yaml", text), catalog)


def refusal(excinfo) -> str:
    assert isinstance(excinfo.value, InputError)
    return str(excinfo.value)


# --- metric catalog -------------------------------------------------------------------


def test_every_metric_type_and_optional_key_parses(tmp_path) -> None:
    path = write(
        tmp_path / "metrics.yaml",
        """\
        conversion:
          type: proportion
          event: order
          direction: increase
          name: Conversion
          description: Share of users who order.
          window_days: 14
          filter: {channel: phone, new_customer: true, store: 5}
          format: percent
        revenue:
          type: mean
          event: order
          aggregate: max
          direction: increase
          format: currency
        nps:
          type: nps
          event: nps_response
          direction: increase
        contacts_per_order:
          type: ratio
          numerator: {event: contact, aggregate: count, filter: {channel: chat}}
          denominator: {event: order, aggregate: sum}
          direction: decrease
          format: number
        """,
    )
    catalog = load_catalog(path)

    assert catalog.ids == ("conversion", "revenue", "nps", "contacts_per_order")
    conversion = catalog["conversion"]
    assert conversion.type == "proportion"
    assert conversion.event == "order"
    assert conversion.direction == "increase"
    assert conversion.label == "Conversion"
    assert conversion.description == "Share of users who order."
    assert conversion.window_days == 14
    # filter pairs are kept sorted by column name
    assert conversion.filter == (
        ("channel", "phone"),
        ("new_customer", True),
        ("store", 5),
    )
    assert conversion.format == "percent"
    assert catalog["revenue"].aggregate == "max"
    assert catalog["revenue"].format == "currency"
    assert catalog["nps"].type == "nps"
    assert catalog["nps"].label == "nps"  # no name: the id
    ratio = catalog["contacts_per_order"]
    assert ratio.numerator == EventSpec("contact", "count", (("channel", "chat"),))
    assert ratio.denominator == EventSpec("order", "sum")
    assert ratio.direction == "decrease"


@pytest.mark.parametrize("aggregate", ["sum", "count", "max", "last"])
def test_mean_metric_accepts_every_aggregate(tmp_path, aggregate: str) -> None:
    path = write(
        tmp_path / "metrics.yaml",
        f"""\
        m:
          type: mean
          event: order
          aggregate: {aggregate}
          direction: increase
        """,
    )
    assert load_catalog(path)["m"].aggregate == aggregate


def test_mean_metric_aggregate_defaults_to_sum(tmp_path) -> None:
    path = write(
        tmp_path / "metrics.yaml",
        "m: {type: mean, event: order, direction: increase}\n",
    )
    assert load_catalog(path)["m"].aggregate == "sum"


def test_unknown_metric_key_is_named_with_file_and_line(tmp_path) -> None:
    path = write(
        tmp_path / "metrics.yaml",
        """\
        conversion:
          type: proportion
          event: order
          direction: increase
          windows_days: 7
        """,
    )
    with pytest.raises(ConfigError) as excinfo:
        load_catalog(path)
    # line 5: "windows_days: 7"
    assert refusal(excinfo).startswith(f"{path}:5:")
    assert "windows_days" in str(excinfo.value)
    assert excinfo.value.line == 5


def test_unknown_metric_type_is_named_with_file_and_line(tmp_path) -> None:
    path = write(
        tmp_path / "metrics.yaml",
        """\
        conversion:
          type: proportion
          event: order
          direction: increase
        median_basket:
          type: median
          event: order
          direction: increase
        """,
    )
    with pytest.raises(ConfigError) as excinfo:
        load_catalog(path)
    # line 6: "type: median"
    assert refusal(excinfo).startswith(f"{path}:6:")
    assert "median" in str(excinfo.value)


def test_aggregate_key_is_refused_on_a_proportion(tmp_path) -> None:
    path = write(
        tmp_path / "metrics.yaml",
        """\
        conversion:
          type: proportion
          event: order
          aggregate: sum
          direction: increase
        """,
    )
    with pytest.raises(ConfigError, match=r":4: unknown key 'aggregate'"):
        load_catalog(path)


@pytest.mark.parametrize("metric_type", ["proportion", "mean", "nps"])
def test_a_type_allows_the_common_keys_and_its_registry_keys(
    tmp_path, metric_type: str
) -> None:
    from cxlab.metrics import TYPES

    path = write(
        tmp_path / "metrics.yaml",
        f"""\
        m:
          type: {metric_type}
          event: order
          direction: increase
          numerator: {{event: contact}}
        """,
    )
    with pytest.raises(ConfigError, match=r":5: unknown key 'numerator'") as excinfo:
        load_catalog(path)
    allowed = {"type", "direction", "name", "description", "window_days", "filter"}
    allowed |= {"format", *TYPES[metric_type].config_keys}
    assert f"(allowed: {', '.join(sorted(allowed))})" in str(excinfo.value)


def test_unknown_key_inside_ratio_side_is_refused(tmp_path) -> None:
    path = write(
        tmp_path / "metrics.yaml",
        """\
        cpo:
          type: ratio
          numerator: {event: contact, agg: count}
          denominator: {event: order}
          direction: decrease
        """,
    )
    with pytest.raises(ConfigError, match=r":3: unknown key 'agg'"):
        load_catalog(path)


def test_filter_on_a_contract_column_is_refused(tmp_path) -> None:
    path = write(
        tmp_path / "metrics.yaml",
        """\
        conversion:
          type: proportion
          event: order
          direction: increase
          filter: {variant: control}
        """,
    )
    with pytest.raises(ConfigError, match=r":5: "):
        load_catalog(path)


def test_bad_yaml_is_named_with_file_and_line(tmp_path) -> None:
    path = write(
        tmp_path / "metrics.yaml",
        """\
        conversion:
          type: proportion
          event: [order
          direction: increase
        """,
    )
    with pytest.raises(ConfigError) as excinfo:
        load_catalog(path)
    assert "invalid YAML" in str(excinfo.value)
    assert excinfo.value.file == str(path)
    assert excinfo.value.line is not None
    assert str(excinfo.value).startswith(f"{path}:{excinfo.value.line}:")


def test_missing_catalog_names_the_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"metrics\.yaml"):
        load_catalog(tmp_path / "metrics.yaml")


# --- experiments --------------------------------------------------------------------


def test_minimal_experiment_gets_contract_defaults(lab, catalog) -> None:
    exp = load_exp(lab, catalog, EXPERIMENT_HEAD)

    assert exp.id == "exp"
    assert exp.start == dt.date(2026, 10, 1)
    assert exp.end == dt.date(2026, 10, 5)
    assert exp.variants == (Variant("control", 0.5), Variant("treatment", 0.5))
    assert exp.control == "control"  # the first variant
    assert exp.treatments == ("treatment",)
    assert exp.primary_metrics == ("conversion",)
    assert exp.alpha == 0.05
    assert exp.decision == "sequential"
    assert exp.sequential_tuning == 5000
    assert exp.sequential_method == "mixture"
    assert exp.correction == "holm"
    assert exp.cuped_days == 0
    assert exp.bayes_prior is None
    assert exp.columns == ()


def test_every_optional_experiment_key_parses(lab, catalog) -> None:
    exp = load_exp(
        lab,
        catalog,
        """\
        id: exp
        name: Proactive e-mail
        hypothesis: Fewer contacts.
        owner: delivery
        start: 2026-10-01
        end: 2026-10-28
        variants:
          - {id: control, weight: 0.25}
          - {id: a, weight: 0.25}
          - {id: b, weight: 0.5}
        control: b
        primary_metric: contacts_per_order
        secondary_metrics: [conversion, nps]
        guardrail_metrics: [revenue]
        alpha: 0.1
        decision: bayesian
        dimensions: [platform, country]
        status: shipped
        decision_note: Shipped on 2026-10-29.
        planned_users: 20000
        sequential_tuning: 100000
        sequential_method: group
        bayes_prior: {mean: 0, sd: 0.3}
        correction: bh
        cuped_days: 14
        tags: [delivery, email]
        columns: {user_id: customer, timestamp: ts}
        """,
    )
    assert exp.label == "Proactive e-mail"
    assert exp.hypothesis == "Fewer contacts."
    assert exp.owner == "delivery"
    assert exp.control == "b"
    assert exp.treatments == ("control", "a")
    assert exp.metric_roles == (
        ("contacts_per_order", "primary"),
        ("conversion", "secondary"),
        ("nps", "secondary"),
        ("revenue", "guardrail"),
    )
    assert exp.alpha == 0.1
    assert exp.decision == "bayesian"
    assert exp.dimensions == ("platform", "country")
    assert exp.status == "shipped"
    assert exp.decision_note == "Shipped on 2026-10-29."
    assert exp.planned_users == 20_000
    assert exp.sequential_tuning == 100_000
    assert exp.sequential_method == "group"
    assert exp.bayes_prior == BayesPrior(mean=0.0, sd=0.3)
    assert exp.correction == "bh"
    assert exp.cuped_days == 14
    assert exp.tags == ("delivery", "email")
    assert dict(exp.columns) == {"user_id": "customer", "timestamp": "ts"}


def test_variants_without_weights_split_evenly(lab, catalog) -> None:
    exp = load_exp(
        lab,
        catalog,
        """\
        id: exp
        start: 2026-10-01
        variants: [control, a, b, c]
        primary_metric: conversion
        """,
    )
    assert [v.weight for v in exp.variants] == [0.25, 0.25, 0.25, 0.25]
    assert exp.end is None  # optional while running


def test_unknown_experiment_key_is_named_with_file_and_line(lab, catalog) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_exp(lab, catalog, EXPERIMENT_HEAD + "primary_metrics: [nps]\n")
    # EXPERIMENT_HEAD is 7 lines: the unknown key is on line 8
    path = lab.experiments_dir / "exp.yaml"
    assert refusal(excinfo).startswith(f"{path}:8:")
    assert "primary_metrics" in str(excinfo.value)


def test_metric_missing_from_catalog_is_named_with_file_and_line(lab, catalog) -> None:
    text = EXPERIMENT_HEAD + "secondary_metrics: [nps]\nguardrail_metrics: [aov]\n"
    with pytest.raises(ConfigError) as excinfo:
        load_exp(lab, catalog, text)
    # line 9: "guardrail_metrics: [aov]"
    assert refusal(excinfo).startswith(f"{lab.experiments_dir / 'exp.yaml'}:9:")
    assert "'aov'" in str(excinfo.value)


def test_primary_metric_missing_from_catalog_is_refused(lab, catalog) -> None:
    text = EXPERIMENT_HEAD.replace("primary_metric: conversion", "primary_metric: cr")
    with pytest.raises(ConfigError, match=r"exp.yaml:7: metric 'cr'"):
        load_exp(lab, catalog, text)


def test_duplicate_variant_ids_are_named_with_file_and_line(lab, catalog) -> None:
    text = """\
    id: exp
    start: 2026-10-01
    variants:
      - {id: control, weight: 0.5}
      - {id: control, weight: 0.5}
    primary_metric: conversion
    """
    with pytest.raises(ConfigError, match=r"exp.yaml:3: duplicate variant id"):
        load_exp(lab, catalog, text)


def test_weights_not_summing_to_one_are_named_with_file_and_line(lab, catalog) -> None:
    text = EXPERIMENT_HEAD.replace(
        "weight: 0.5}\n  - {id: treatment, weight: 0.5",
        "weight: 0.5}\n  - {id: treatment, weight: 0.4",
    )
    with pytest.raises(ConfigError) as excinfo:
        load_exp(lab, catalog, text)
    # line 4: "variants:"; 0.5 + 0.4 = 0.9
    assert refusal(excinfo).startswith(f"{lab.experiments_dir / 'exp.yaml'}:4:")
    assert "sum to 1" in str(excinfo.value)
    assert "0.9" in str(excinfo.value)


def test_weights_for_some_variants_only_are_refused(lab, catalog) -> None:
    text = """\
    id: exp
    start: 2026-10-01
    variants:
      - {id: control, weight: 0.5}
      - treatment
    primary_metric: conversion
    """
    with pytest.raises(ConfigError, match=r"exp.yaml:3: "):
        load_exp(lab, catalog, text)


def test_end_before_start_is_named_with_file_and_line(lab, catalog) -> None:
    text = EXPERIMENT_HEAD.replace("end: 2026-10-05", "end: 2026-09-30")
    with pytest.raises(ConfigError) as excinfo:
        load_exp(lab, catalog, text)
    # line 3: "end: 2026-09-30"
    assert refusal(excinfo).startswith(f"{lab.experiments_dir / 'exp.yaml'}:3:")
    assert "before start" in str(excinfo.value)


def test_end_on_start_day_is_a_one_day_experiment(lab, catalog) -> None:
    text = EXPERIMENT_HEAD.replace("end: 2026-10-05", "end: 2026-10-01")
    assert load_exp(lab, catalog, text).end == dt.date(2026, 10, 1)


def test_alpha_may_be_one_half(lab, catalog) -> None:
    # CONTRACT §2: alpha in (0, 0.5]
    assert load_exp(lab, catalog, EXPERIMENT_HEAD + "alpha: 0.5\n").alpha == 0.5


@pytest.mark.parametrize("alpha", ["0", "0.51", "1.2", "-0.05", "five"])
def test_bad_alpha_is_named_with_file_and_line(lab, catalog, alpha: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_exp(lab, catalog, EXPERIMENT_HEAD + f"alpha: {alpha}\n")
    # line 8: "alpha: ..."
    assert refusal(excinfo).startswith(f"{lab.experiments_dir / 'exp.yaml'}:8:")
    assert "alpha" in str(excinfo.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("decision: frequentist", "decision"),
        ("status: paused", "status"),
        ("correction: bonferroni", "correction"),
        ("sequential_method: obrien", "sequential_method"),
        ("cuped_days: -1", "cuped_days"),
        ("bayes_prior: {mean: 0, sd: 0}", "sd"),
        ("control: placebo", "placebo"),
        ("columns: {customer: user_id}", "customer"),
    ],
)
def test_bad_optional_values_are_named_with_file_and_line(
    lab, catalog, line: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_exp(lab, catalog, EXPERIMENT_HEAD + line + "\n")
    assert refusal(excinfo).startswith(f"{lab.experiments_dir / 'exp.yaml'}:8:")
    assert expected in str(excinfo.value)


def test_bad_experiment_yaml_is_named_with_file_and_line(lab, catalog) -> None:
    text = EXPERIMENT_HEAD + "secondary_metrics: [nps\n"
    with pytest.raises(ConfigError) as excinfo:
        load_exp(lab, catalog, text)
    assert "invalid YAML" in str(excinfo.value)
    assert excinfo.value.line is not None
    assert str(excinfo.value).startswith(
        f"{lab.experiments_dir / 'exp.yaml'}:{excinfo.value.line}:"
    )


def test_columns_mapping_is_kept_as_sorted_pairs(lab, catalog) -> None:
    exp = load_exp(
        lab, catalog, EXPERIMENT_HEAD + "columns: {user_id: customer, timestamp: ts}\n"
    )
    assert exp.columns == (("timestamp", "ts"), ("user_id", "customer"))


# --- find_experiment ------------------------------------------------------------------


def test_find_experiment_by_id_in_the_folder(lab, catalog) -> None:
    lab.experiment(id="first")
    lab.experiment(id="second", primary_metric="nps")
    exp = find_experiment("second", lab.experiments_dir, catalog)
    assert exp.id == "second"
    assert exp.primary_metrics == ("nps",)


def test_find_experiment_by_path_outside_the_folder(lab, catalog, tmp_path) -> None:
    elsewhere = tmp_path / "drafts"
    elsewhere.mkdir()
    path = write(
        elsewhere / "draft.yaml", EXPERIMENT_HEAD.replace("id: exp", "id: draft")
    )
    exp = find_experiment(str(path), lab.experiments_dir, catalog)
    assert exp.id == "draft"
    assert exp.source == str(path)


def test_find_experiment_without_id_takes_the_file_name(lab, catalog) -> None:
    write(lab.experiments_dir / "no-id.yaml", EXPERIMENT_HEAD.replace("id: exp\n", ""))
    assert find_experiment("no-id", lab.experiments_dir, catalog).id == "no-id"


def test_unknown_experiment_id_is_a_config_error(lab, catalog) -> None:
    lab.experiment()
    with pytest.raises(ConfigError, match="no experiment with id or file 'nope'"):
        find_experiment("nope", lab.experiments_dir, catalog)


def test_metrics_yaml_in_the_folder_is_not_an_experiment(lab, catalog) -> None:
    lab.experiment()
    with pytest.raises(ConfigError):
        find_experiment("metrics", lab.experiments_dir, catalog)


# --- one broken file stays local --------------------------------------------------


def test_each_broken_experiment_file_is_named_and_the_others_load(lab, catalog) -> None:
    good = lab.experiment(id="good")
    write(lab.experiments_dir / "bad-key.yaml", EXPERIMENT_HEAD + "colour: red\n")
    write(lab.experiments_dir / "bad-yaml.yaml", "id: [unclosed\n")
    write(
        lab.experiments_dir / "bad-metric.yaml",
        EXPERIMENT_HEAD.replace("id: exp", "id: other") + "guardrail_metrics: [nope]\n",
    )
    write(lab.experiments_dir / "zz-copy.yaml", good.read_text())
    experiments, errors = load_experiments_each(lab.experiments_dir, catalog)
    assert [e.id for e in experiments] == ["good"]
    messages = [str(e) for e in errors]
    assert len(messages) == 4
    assert messages[0].startswith(f"{lab.experiments_dir / 'bad-key.yaml'}:8: ")
    assert "unknown key 'colour'" in messages[0]
    assert messages[1].startswith(f"{lab.experiments_dir / 'bad-metric.yaml'}:8: ")
    assert "nope" in messages[1]
    assert messages[2].startswith(f"{lab.experiments_dir / 'bad-yaml.yaml'}:")
    assert messages[3] == (
        f"{lab.experiments_dir / 'zz-copy.yaml'}:1: experiment id 'good' is also "
        f"used by {good}"
    )
    with pytest.raises(ConfigError) as excinfo:
        load_experiments(lab.experiments_dir, catalog)
    assert str(excinfo.value) == messages[0]  # the strict loader: the first error


def test_config_error_survives_pickling_with_file_and_line() -> None:
    error = ConfigError("experiments/x.yaml", 7, "unknown key 'colour'")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.file, copy.line, copy.detail) == (
        "experiments/x.yaml",
        7,
        error.detail,
    )
    assert str(copy) == "experiments/x.yaml:7: unknown key 'colour'"
