r"""Groups of nuisance parameters for the uncertainty breakdown of :math:`\sigma_\mu`.

The breakdown (:meth:`aalearn.inference.measurement.Measurement.breakdown`) refits the
measurement with one group of nuisance parameters fixed at its best-fit values and quotes,
as ATLAS and CMS do, :math:`\sigma_{\mu,\text{fixed}}` and the group's contribution
:math:`\sqrt{\sigma_\mu^2 - \sigma_{\mu,\text{fixed}}^2}`. This module forms the groups
(the default ones from the model's modifiers, or the user's, with label prefixes) and
turns a breakdown into table rows for the terminal and the HTML report.

Example:
    >>> groups = default_groups(
    ...     [("mu", "normfactor"), ("bn", "normsys"), ("staterror_score", "staterror")],
    ...     {"bn": ["bn"], "staterror_score": ["staterror_score[0]", "staterror_score[1]"]},
    ...     poi="mu",
    ... )
    >>> list(groups)
    ['staterror', 'bn', 'all systematics']
    >>> groups["all systematics"]
    ['bn', 'staterror_score[0]', 'staterror_score[1]']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ALL_SYSTEMATICS", "STATERROR_GROUP", "breakdown_rows", "default_groups", "resolve_groups"]

ALL_SYSTEMATICS = "all systematics"
"""The group of every nuisance parameter: fixing it leaves the statistical-only σ_μ."""
STATERROR_GROUP = "staterror"
"""The group of all MC statistical (Barlow–Beeston-lite) γ parameters."""
SHAPESYS_GROUP = "shapesys"
"""The group of the per-bin absolute background uncertainty's γ parameters."""

_ORDER = {"staterror": 0, "normsys": 1, "histosys": 2, "shapesys": 3}

DEFINITION = (
    "σ_μ,fixed: HESSE σ_μ of a refit with the group's parameters fixed at their best-fit values; "
    "contribution = √(σ_μ² − σ_μ,fixed²); fraction_of_variance = contribution²/σ_μ². Contributions of "
    "correlated groups do not add in quadrature to the total."
)


def default_groups(
    modifiers: Sequence[tuple[str, str]], param_labels: Mapping[str, Sequence[str]], *, poi: str
) -> dict[str, list[str]]:
    """One group per nuisance modifier family, then ``"all systematics"``.

    Args:
        modifiers: pyhf's ``(name, type)`` pairs (``model.config.modifiers``).
        param_labels: Parameter name -> its labels (``name`` or ``name[i]``).
        poi: The parameter of interest (in no group).

    Returns:
        ``"staterror"`` (every staterror γ together), each normsys and each histosys by
        name (a normsys and a histosys of the same name are one parameter, one group),
        ``"shapesys"`` (every shapesys γ), any other parameter by name, and
        ``"all systematics"`` (every parameter but the POI).
    """
    groups: dict[str, list[str]] = {}
    kinds = sorted(
        ((name, kind) for name, kind in dict.fromkeys(modifiers) if name != poi),
        key=lambda nk: _ORDER.get(nk[1], len(_ORDER)),
    )
    for name, kind in kinds:
        group = {"staterror": STATERROR_GROUP, "shapesys": SHAPESYS_GROUP}.get(kind, name)
        members = groups.setdefault(group, [])
        members += [lab for lab in param_labels[name] if lab not in members]
    every = [lab for name, labs in param_labels.items() if name != poi for lab in labs]
    if every:
        groups[ALL_SYSTEMATICS] = every
    return groups


def resolve_groups(
    groups: Mapping[str, str | Sequence[str]], labels: Sequence[str], *, poi: str
) -> dict[str, list[str]]:
    """The parameter labels of each user group, then ``"all systematics"`` (unless named).

    Args:
        groups: Group name -> parameter labels or label prefixes (``"staterror"``
            matches every ``staterror_score[i]``); a single string is one entry.
        labels: The model's parameter labels.
        poi: The parameter of interest (may not be fixed).

    Returns:
        Group name -> the matched labels, in the model's order.

    Raises:
        ValueError: For an entry that matches no nuisance label (the message names the
            known labels), the POI in a group, or an empty group.
    """
    nuisances = [lab for lab in labels if lab != poi]
    out: dict[str, list[str]] = {}
    for name, entries in groups.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"breakdown group names must be non-empty strings, got {name!r}")
        items = [entries] if isinstance(entries, str) else list(entries)
        if not items:
            raise ValueError(f"breakdown group {name!r} is empty; give parameter labels or prefixes")
        chosen: set[str] = set()
        for entry in items:
            if entry == poi:
                raise ValueError(
                    f"breakdown group {name!r} holds the parameter of interest {poi!r}; it stays free"
                )
            hits = [lab for lab in nuisances if lab == entry or lab.startswith(str(entry))]
            if not hits:
                raise ValueError(
                    f"unknown parameter label {entry!r} in breakdown group {name!r}; "
                    f"known labels: {', '.join(nuisances) or '(none)'}"
                )
            chosen.update(hits)
        out[name] = [lab for lab in nuisances if lab in chosen]
    if nuisances and ALL_SYSTEMATICS not in out:
        out[ALL_SYSTEMATICS] = nuisances
    return out


def breakdown_rows(breakdown: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Table rows of a breakdown: the total first, then one row per group.

    Example:
        >>> b = {"sigma_mu": 0.5, "groups": {"bn": {"parameters": ["bn"], "sigma_mu_fixed": 0.3,
        ...      "contribution": 0.4, "fraction_of_variance": 0.64}}}
        >>> [r["group"] for r in breakdown_rows(b)]
        ['total', 'bn']
    """
    rows: list[dict[str, Any]] = [
        {
            "group": "total",
            "sigma_mu_fixed": None,
            "contribution": breakdown["sigma_mu"],
            "fraction_of_variance": 1.0,
        }
    ]
    for name, g in breakdown["groups"].items():
        rows.append(
            {
                "group": name,
                "sigma_mu_fixed": g["sigma_mu_fixed"],
                "contribution": g["contribution"],
                "fraction_of_variance": g["fraction_of_variance"],
            }
        )
    return rows
