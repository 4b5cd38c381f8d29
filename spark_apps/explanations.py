"""Why a window was flagged, in an analyst's words: its top reasons by contribution to the fraud score.

Pure numpy, no Spark at import. The training job stores a population profile in the model
metadata (quantiles of each model feature over the normal training windows, and the
currency the amounts are in); scoring turns a flagged window into at most EXPLAIN_TOP
reasons. A feature is a reason only when

- it pulls the window toward the nearest (likeliest) fraud cluster and away from the nearest
  normal one: its term of the score's log-likelihood ratio for those two clusters is positive
  (`contributions`; for models without cluster spreads (x - n)^2 - (x - f)^2 in the scaled space);
- its value is unusual against the population (above the 90th or below the 10th
  percentile of normal training windows, on the side the fraud centroid lies), and,
  where the sender has a baseline (typical_tx, typical_amount_minor of spark_apps.history),
  also against the sender's own history (at least SENDER_FACTOR times its typical, or at
  most 1/SENDER_FACTOR of it).

Each reason says its value in user units (money with its currency, counts as counts,
ratios as percent, durations in minutes/hours/days), never in minor units or sigma.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Final, Mapping, Protocol, Sequence

import numpy as np

EXPLAIN_TOP: Final = 3  # reasons per alert; more is noise for an analyst
# Percentile levels stored per feature: every percent, finer in both tails so that
# "higher than 99.7% of normal windows" can be said.
PROFILE_LEVELS: Final = tuple(sorted({0.0, 0.001, 0.002, 0.005, 0.995, 0.997, 0.998, 0.999, 1.0,
                                      *(round(i / 100, 2) for i in range(1, 100))}))
UNUSUAL_SHARE: Final = 0.90  # a value is unusual when above (or below) at least this share of normal windows
SENDER_FACTOR: Final = 2.0  # ... and, with a sender baseline, at least this many times its typical (or 1/this)
MIN_CONTRIBUTION: Final = 0.01  # share of the positive contributions below which a feature is noise, not a reason
# Without a profile (models trained before it existed): unusual = this far from the training mean, scaled.
FALLBACK_SCALED: Final = 2.0

# Columns of a window row an explanation reads besides the model's features (spark_apps.history).
CONTEXT_COLUMNS: Final = ("tx_count", "pair_tx_count", "new_receivers", "history_windows", "typical_tx",
                          "typical_amount_minor")

# Minor-unit exponents (ISO 4217) that are not 2, and symbols for the common codes; any
# other code is written before the amount ("SEK 1,234.50").
_EXPONENTS: Final = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0, "HUF": 2, "BHD": 3, "KWD": 3, "OMR": 3,
                     "JOD": 3, "TND": 3}
_SYMBOLS: Final = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "CAD": "CA$",
                   "AUD": "A$", "NZD": "NZ$", "CNY": "CN¥", "BRL": "R$", "MXN": "MX$"}

# feature -> (unit, phrase, sender baseline). Units: money (minor units), count, share
# (0..1), minutes. Baselines: "tx" = typical_tx per window, "amount" = typical_amount_minor
# per window, "per_tx" = typical amount of one transaction (typical_amount / typical_tx);
# a pair_* feature spans two windows when the previous minute took part.
_SPECS: Final[dict[str, tuple[str, str, str | None]]] = {
    "tx_count": ("count", "transactions in the minute", "tx"),
    "total_amount_minor": ("money", "sent in the minute", "amount"),
    "failed_count": ("count", "failed or declined transactions", None),
    "distinct_receivers": ("count", "different receivers in the minute", None),
    "max_amount_minor": ("money", "largest single transaction", "per_tx"),
    "small_amount_count": ("count", "tiny charges in the minute", None),
    "avg_amount_minor": ("money", "average transaction", "per_tx"),
    "failed_ratio": ("share", "of the minute's transactions failed or were declined", None),
    "distinct_types": ("count", "kinds of transaction in the minute", None),
    "transfer_count": ("count", "transfers in the minute", None),
    "remote_amount_minor": ("money", "sent online or by mobile", "amount"),
    "pair_tx_count": ("count", "transactions in this minute and the one before", "tx"),
    "pair_total_amount_minor": ("money", "sent in this minute and the one before", "amount"),
    "pair_failed_count": ("count", "failed or declined transactions in this minute and the one before", None),
    "pair_small_amount_count": ("count", "tiny charges in this minute and the one before", None),
    "pair_transfer_count": ("count", "transfers in this minute and the one before", None),
    "pair_remote_amount_minor": ("money", "sent online or by mobile in this minute and the one before", "amount"),
    "pair_distinct_receivers": ("count", "different receivers in this minute and the one before", None),
    "pair_max_amount_minor": ("money", "largest single transaction in this minute and the one before", "per_tx"),
    "new_receivers": ("count", "receivers this sender never paid before", None),
    "history_windows": ("count", "earlier active minutes on record for this sender (decayed)", None),
    "typical_tx": ("count", "transactions in this sender's typical minute", None),
    "typical_amount_minor": ("money", "sent in this sender's typical minute", None),
    "idle_minutes": ("minutes", "idle before this activity", None),
    # decayed over the few minutes before the pair (3-minute half-life): a slow burst's earlier part
    # (a decayed sum, not per minute: no sender baseline to compare it with)
    "recent_tx": ("count", "transactions in the few minutes before (decayed count)", None),
    "recent_amount_minor": ("money", "sent in the few minutes before (decayed sum)", None),
    # the sender's consecutive active minutes up to this one: the whole of a burst spread over minutes
    "run_tx": ("count", "transactions in this run of consecutive active minutes", None),
    "run_amount_minor": ("money", "sent in this run of consecutive active minutes", None),
}


class ExplainedModel(Protocol):
    """What an explanation needs of spark_apps.scoring.ModelMetadata (no import: scoring imports this)."""

    version: str
    feature_names: tuple[str, ...]
    centroids: tuple[tuple[float, ...], ...]
    cluster_spread: tuple[tuple[float, ...], ...]
    population_profile: Mapping[str, Any]


# --- training: the population profile ------------------------------------------------------
def population_profile(normal_features: np.ndarray, feature_names: Sequence[str], *, currency: str | None) -> dict[str, Any]:
    """Quantiles (at PROFILE_LEVELS) of each feature over the normal training windows, and the currency.

    Quantiles are taken without interpolation (inverted CDF: the smallest value with at
    least that share at or below it), so every percentile said from them is a lower bound.
    """
    x = np.asarray(normal_features, dtype=float)
    if x.ndim != 2 or len(x) == 0:
        return {"currency": currency, "windows": 0, "levels": [], "quantiles": {}}
    x = np.nan_to_num(x, nan=0.0)
    q = np.quantile(x, PROFILE_LEVELS, axis=0, method="inverted_cdf")
    return {
        "currency": currency,
        "windows": int(len(x)),
        "levels": list(PROFILE_LEVELS),
        "quantiles": {name: [float(v) for v in q[:, j]] for j, name in enumerate(feature_names)},
    }


def with_population_profile(metadata: Any, windows: Any, normal: np.ndarray, *, transactions: Any) -> Any:
    """A copy of ModelMetadata `metadata` profiled on the `normal` rows of the training `windows` (pandas).

    The one call the training job makes: `normal` is its train-side windows without labelled
    fraud (all of them when unlabelled); `transactions` (Spark) gives the currency.
    """
    features = windows[list(metadata.feature_names)].to_numpy(dtype=float)[np.asarray(normal, dtype=bool)]
    profile = population_profile(features, metadata.feature_names, currency=currency_of(transactions))
    return dataclasses.replace(metadata, population_profile=profile)


def currency_of(transactions: Any) -> str | None:
    """The currency of a training DataFrame's amounts: its first non-null `currency` (one Spark limit-1 job).

    A model's amount features are minor units of one currency (the producer writes one,
    `producer.traffic.currency`); None when the input has no currency column.
    """
    from pyspark.sql import functions as F

    if "currency" not in transactions.columns:
        return None
    rows = transactions.select("currency").where(F.col("currency").isNotNull()).limit(1).collect()
    return str(rows[0][0]) if rows else None


# --- units -----------------------------------------------------------------------------------
def format_money(minor: float, currency: str | None) -> str:
    """Minor units as an amount of `currency`: "$19,708.91", "¥1,200", "SEK 12.50"."""
    exponent = _EXPONENTS.get(currency or "", 2)
    amount = f"{float(minor) / 10 ** exponent:,.{exponent}f}"
    if currency is None:
        return f"{amount} (currency not recorded)"
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{amount}" if symbol else f"{currency} {amount}"


def format_count(value: float) -> str:
    """A count as a count; a typical (averaged) count with one decimal when it is not whole."""
    rounded = round(float(value), 1)
    return f"{int(rounded):,}" if rounded.is_integer() else f"{rounded:,.1f}"


def format_minutes(minutes: float) -> str:
    if minutes >= 2 * 1440:
        return f"{minutes / 1440:,.0f} days"
    if minutes >= 120:
        return f"{minutes / 60:,.1f} hours"
    return f"{minutes:,.0f} minutes"


def _format_share(share: float) -> str:
    text = f"{100 * share:.1f}".rstrip("0").rstrip(".")
    return f"{text}%"


def format_value(unit: str, value: float, currency: str | None, *, typical: bool = False) -> str:
    """`value` in user units; a count is whole unless it is a `typical` (an average over the sender's minutes)."""
    if unit == "count" and not typical:
        return f"{round(float(value)):,}"
    if unit == "money":
        return format_money(value, currency)
    if unit == "share":
        return _format_share(value)
    if unit == "minutes":
        return format_minutes(value)
    return format_count(value)


# --- population and sender ---------------------------------------------------------------------
def share_below(profile: Mapping[str, Any], feature: str, value: float) -> float | None:
    """At least this share of normal training windows had a value below `value` (None: not profiled)."""
    q = _quantiles(profile, feature)
    if q is None:
        return None
    index = int(np.searchsorted(q, value, side="left"))  # quantiles below value
    return float(profile["levels"][index - 1]) if index > 0 else 0.0


def share_above(profile: Mapping[str, Any], feature: str, value: float) -> float | None:
    """At least this share of normal training windows had a value above `value` (None: not profiled)."""
    q = _quantiles(profile, feature)
    if q is None:
        return None
    index = int(np.searchsorted(q, value, side="right"))  # first quantile above value
    return 1.0 - float(profile["levels"][index]) if index < len(q) else 0.0


_ARRAYS: dict[int, tuple[Any, dict[str, np.ndarray]]] = {}  # id(quantiles mapping) -> (it, its arrays)


def _quantiles(profile: Mapping[str, Any], feature: str) -> np.ndarray | None:
    """A feature's quantiles as an array, converted once per profile (explaining a batch reads them often)."""
    quantiles = profile.get("quantiles") or {}
    if not quantiles.get(feature):
        return None
    cached = _ARRAYS.get(id(quantiles))
    if cached is None or cached[0] is not quantiles:
        if len(_ARRAYS) > 16:  # a stream sees one model at a time; keep a few
            _ARRAYS.clear()
        cached = _ARRAYS[id(quantiles)] = (quantiles, {name: np.asarray(q, dtype=float) for name, q in quantiles.items()})
    return cached[1][feature]


def sender_typical(feature: str, values: Mapping[str, float]) -> float | None:
    """The sender's own typical value of `feature` (same units), or None without a baseline."""
    baseline = _SPECS.get(feature, ("", "", None))[2]
    typical_tx = values.get("typical_tx")
    if baseline is None or typical_tx is None or not typical_tx > 0:
        return None
    typical_amount = values.get("typical_amount_minor") or 0.0
    windows = 2.0 if _two_minutes(feature, values) else 1.0
    if baseline == "tx":
        return float(typical_tx) * windows
    if baseline == "amount":
        return float(typical_amount) * windows if typical_amount > 0 else None
    return float(typical_amount) / float(typical_tx) if typical_amount > 0 else None


def _two_minutes(feature: str, values: Mapping[str, float]) -> bool:
    """Whether a pair_* feature spans two minutes: the previous one took part (more transactions than the window's)."""
    return feature.startswith("pair_") and values.get("pair_tx_count", 0) > values.get("tx_count", math.inf)


# --- the reasons ---------------------------------------------------------------------------------
def contributions(scaled: np.ndarray, normal: np.ndarray, fraud: np.ndarray | None,
                  spread_normal: np.ndarray | None = None, spread_fraud: np.ndarray | None = None) -> np.ndarray:
    """Per feature: how much it moves the window toward the fraud centroid and away from the normal one.

    Centroids only: (x - n)^2 - (x - f)^2, which add up to d_normal^2 - d_fraud^2 (the
    distance-ratio score). With cluster spreads (diagonal Gaussians): the feature's term of
    the log-likelihood ratio of the two clusters, ((x - n)/s_n)^2 / 2 - ((x - f)/s_f)^2 / 2
    - log(s_f / s_n). Without a fraud centroid (a model flagging far outliers only) it is
    the pull away from normal, (x - n)^2.
    """
    if fraud is None:
        return (scaled - normal) ** 2
    if spread_normal is None or spread_fraud is None:
        return (scaled - normal) ** 2 - (scaled - fraud) ** 2
    return (0.5 * ((scaled - normal) / spread_normal) ** 2 - 0.5 * ((scaled - fraud) / spread_fraud) ** 2
            - np.log(spread_fraud / spread_normal))


def explain_window(values: Mapping[str, float], scaled: Sequence[float], normal_cluster: int,
                   fraud_cluster: int | None, model: ExplainedModel) -> list[dict[str, Any]]:
    """Up to EXPLAIN_TOP reasons for one window, strongest first; [] when no feature both pulls and deviates.

    `values` holds the window's model features and whichever CONTEXT_COLUMNS it has.
    """
    x = np.asarray(scaled, dtype=float)
    centroids = np.asarray(model.centroids, dtype=float)
    normal = centroids[normal_cluster]
    has_fraud = fraud_cluster is not None and fraud_cluster >= 0
    fraud = centroids[fraud_cluster] if has_fraud else None
    spreads = np.asarray(model.cluster_spread, dtype=float) if getattr(model, "cluster_spread", ()) else None
    if spreads is not None and has_fraud:
        c = contributions(x, normal, fraud, spreads[normal_cluster], spreads[fraud_cluster])
    else:
        c = contributions(x, normal, fraud)
    positive = float(np.clip(c, 0.0, None).sum())
    profile = model.population_profile or {}
    currency = profile.get("currency")
    reasons: list[dict[str, Any]] = []
    for j in np.argsort(-c, kind="stable"):
        if c[j] <= 0 or c[j] < MIN_CONTRIBUTION * positive or len(reasons) == EXPLAIN_TOP:
            break
        name = model.feature_names[j]
        high = bool(x[j] >= normal[j])  # the side the window deviates to (the fraud side when c > 0 by distance)
        reason = _reason(name, float(values.get(name, np.nan)), high, float(x[j]), values, profile, currency)
        if reason is not None:
            reason["contribution"] = round(float(c[j]) / positive, 3)
            reasons.append(reason)
    return reasons


def _reason(name: str, value: float, high: bool, scaled: float, values: Mapping[str, float],
            profile: Mapping[str, Any], currency: str | None) -> dict[str, Any] | None:
    """The reason for one feature in user units, or None when its value is not a deviation."""
    if math.isnan(value):
        return None
    unit, phrase, _ = _SPECS.get(name, ("count", name.replace("_", " "), None))
    if _quantiles(profile, name) is not None:
        share = share_below(profile, name, value) if high else share_above(profile, name, value)
        if share is None or share < UNUSUAL_SHARE:
            return None
        percentile = 100 * share if high else 100 * (1 - share)
        versus = "every normal window" if share >= 1.0 else f"{_format_share(share)} of normal windows"
        population = f"{'higher' if high else 'lower'} than {versus}"
    else:  # a model without a profile: far from the training mean on the fraud side
        if (scaled if high else -scaled) < FALLBACK_SCALED:
            return None
        percentile = None
        population = f"far {'above' if high else 'below'} the training average"
    typical = sender_typical(name, values)
    if typical is not None:
        ratio = value / typical
        if (ratio < SENDER_FACTOR) if high else (ratio > 1 / SENDER_FACTOR):
            return None  # ordinary for this sender: no reason
        times = f"{ratio:,.0f}x" if ratio >= 10 or round(ratio, 1).is_integer() else f"{ratio:.1f}x"
        sender = f" — {times} {_typical_phrase(name, typical, unit, currency, _two_minutes(name, values))}"
    elif _SPECS.get(name, ("", "", None))[2] and values.get("history_windows") == 0:
        sender = " — no earlier activity from this sender"
    else:
        sender = ""
    shown = format_value(unit, value, currency)
    text = f"{shown} {_phrase(name, phrase, currency, values)}{sender}; {population}"
    return {
        "feature": name,
        "value": _plain(value),
        "unit": unit,
        "currency": currency if unit == "money" else None,
        "direction": "high" if high else "low",
        "typical_for_sender": None if typical is None else round(typical, 2),
        "population_percentile": None if percentile is None else round(percentile, 1),
        "text": text,
    }


def _typical_phrase(name: str, typical: float, unit: str, currency: str | None, two_minutes: bool) -> str:
    shown = format_value(unit, typical, currency, typical=True)
    baseline = _SPECS[name][2]
    if baseline == "per_tx":
        return f"this sender's typical transaction of {shown}"
    return f"this sender's typical {shown} {'in two minutes' if two_minutes else 'a minute'}"


def _phrase(name: str, phrase: str, currency: str | None, values: Mapping[str, float]) -> str:
    """The feature's phrase: a pair_* of one window reads as that window's; tiny charges name their cut in money."""
    single = name.removeprefix("pair_")
    if single != name and single in _SPECS and values.get("pair_tx_count") is not None and not _two_minutes(name, values):
        phrase = _SPECS[single][1]
    if name.endswith("small_amount_count"):
        from spark_apps.features import SMALL_AMOUNT_MINOR

        return phrase.replace("tiny charges", f"charges under {format_money(SMALL_AMOUNT_MINOR, currency)}")
    return phrase


def _plain(value: float) -> Any:
    return int(value) if float(value).is_integer() else round(float(value), 4)


def explain_rows(frame: Any, result: Mapping[str, np.ndarray], rows: Sequence[int], model: ExplainedModel) -> list[str]:
    """The explanation JSON of `rows` of a scored pandas frame (score_matrix's `result` for all its rows)."""
    names = dict.fromkeys((*model.feature_names, *CONTEXT_COLUMNS))
    columns = {name: frame[name].to_numpy(dtype=float) for name in names if name in frame.columns}
    fraud = result.get("nearest_fraud")
    out = []
    for i in rows:
        values = {name: float(column[i]) for name, column in columns.items()}
        nearest_fraud = None if fraud is None else int(fraud[i])
        out.append(json.dumps(explain_window(values, result["scaled"][i], int(result["nearest_normal"][i]),
                                             nearest_fraud, model)))
    return out
