"""Inputs of the apps: models and data sets given as paths or objects, and ``NAME=VALUE`` options.

Every app takes a model as a path (checkpoint, Keras HDF5, ``aalearn:NAME``) or as an
already-built module, and data as a file or a :class:`~aalearn.data.JetDataset`; the
helpers here are the one place that turns either form into objects. The option parsers
turn the command line's repeated ``NAME=VALUE`` options into Python values with one
error message format.

Example:
    >>> parse_name_value(["fsr-up=up.h5"], option="--variation", form="NAME=FILE", example="a=b.h5")
    [('fsr-up', 'up.h5')]
    >>> parse_options(["eps=1", "attack=pgd"])
    {'eps': 1, 'attack': 'pgd'}
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from torch import nn

from aalearn.data.dataset import JetDataset
from aalearn.data.io import load_dataset
from aalearn.models import load_model

__all__ = [
    "describe_model",
    "finite_float",
    "load_data",
    "load_datasets",
    "load_model_arg",
    "parse_name_value",
    "parse_options",
]

T = TypeVar("T")


def load_model_arg(model: str | Path | nn.Module | Any) -> Any:
    """The model itself, loaded with :func:`aalearn.models.load_model` when given as a path or name.

    Example:
        >>> from aalearn.models import TopoDNN
        >>> net = TopoDNN()
        >>> load_model_arg(net) is net
        True
    """
    return load_model(model) if isinstance(model, str | Path) else model


def describe_model(model: str | Path | nn.Module | Any) -> str:
    """Label of a model argument for results: the path as given, or the class name of a module.

    Example:
        >>> describe_model("m.safetensors")
        'm.safetensors'
    """
    return str(model) if isinstance(model, str | Path) else type(model).__name__


def load_data(data: str | Path | JetDataset, *, n_max: int | None = None, **load_kwargs: Any) -> JetDataset:
    """A data set from a file (any format :func:`aalearn.data.io.load_dataset` reads) or as given.

    Args:
        data: Data file or :class:`JetDataset`.
        n_max: Keep only the first ``n_max`` jets (``None``: all).
        **load_kwargs: Passed to :func:`aalearn.data.io.load_dataset` (``require_labels``,
            ``columns``, ``tree``, ...) when ``data`` is a path.

    Returns:
        The data set.

    Raises:
        ValueError: If ``n_max`` is not positive.

    Example:
        >>> ds = JetDataset(np.zeros((5, 2), dtype=np.float32), None, ("a", "b"), "toy")
        >>> len(load_data(ds, n_max=3))
        3
    """
    ds = data if isinstance(data, JetDataset) else load_dataset(data, **load_kwargs)
    if n_max is not None:
        if n_max < 1:
            raise ValueError(f"n_max must be positive, got {n_max}")
        ds = ds.subset(np.arange(min(n_max, len(ds))))
    return ds


def load_datasets(paths: Sequence[str | Path], **kwargs: Any) -> JetDataset:
    """Load and concatenate several files (any format :func:`aalearn.data.io.load_dataset` reads).

    Raises:
        ValueError: If ``paths`` is empty.

    Example:
        >>> load_datasets([])
        Traceback (most recent call last):
        ...
        ValueError: give at least one data file
    """
    if not paths:
        raise ValueError("give at least one data file")
    parts = [load_dataset(p, **kwargs) for p in paths]
    return parts[0] if len(parts) == 1 else JetDataset.concatenate(parts)


def finite_float(text: str) -> float:
    """``float(text)``, refusing NaN and infinities.

    Example:
        >>> finite_float("-1")
        -1.0
    """
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    return value


def parse_name_value(
    items: Sequence[str] | None,
    *,
    option: str,
    form: str,
    example: str,
    name: Callable[[str], Any] | None = None,
    allow_empty_value: bool = False,
) -> list[tuple[Any, str]]:
    """Parse repeated ``NAME=VALUE`` options (``NAME=FILE``, ``KEY=VALUE``, ``Z=FILE``) in order.

    The name is stripped of spaces; the value is kept as given. Every malformed item raises
    the same message: ``bad OPTION 'ITEM': use FORM, e.g. EXAMPLE``.

    Args:
        items: The option's values (``None``: none given).
        option: The option as the user typed it, for the message (``"--variation"``).
        form: The expected form, for the message (``"NAME=FILE"``).
        example: An example, for the message.
        name: Converter of the name (for example :func:`finite_float`); a ``ValueError``
            from it reports the item as malformed.
        allow_empty_value: Accept ``NAME=`` (an empty value).

    Returns:
        ``(name, value)`` pairs in the order given (names may repeat).

    Raises:
        ValueError: For an item without ``=``, an empty name or value, or a name the
            converter refuses.

    Example:
        >>> parse_name_value(["-1=down.h5"], option="--nuisance-file", form="Z=FILE",
        ...                  example="-1=fsr_down.h5", name=finite_float)
        [(-1.0, 'down.h5')]
    """
    out: list[tuple[Any, str]] = []
    for item in items or []:
        key, sep, value = item.partition("=")
        bad = ValueError(f"bad {option} {item!r}: use {form}, e.g. {example}")
        if not sep or not key.strip() or (not value and not allow_empty_value):
            raise bad
        try:
            parsed = name(key.strip()) if name is not None else key.strip()
        except ValueError:
            raise bad from None
        out.append((parsed, value))
    return out


def parse_options(items: Sequence[str] | None, *, option: str = "--option") -> dict[str, Any]:
    """``["eps=1", "attack=pgd", "only_successful=true"]`` → typed dict (JSON literals where possible).

    Example:
        >>> parse_options(["only_successful=true", "mix=0.5"])
        {'only_successful': True, 'mix': 0.5}
    """
    out: dict[str, Any] = {}
    pairs = parse_name_value(
        items, option=option, form="KEY=VALUE", example=f"{option} eps=1", allow_empty_value=True
    )
    for key, value in pairs:
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out
