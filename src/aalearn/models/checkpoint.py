"""Model checkpoints in safetensors, a registry of architectures and :func:`load_model`.

A checkpoint is one ``.safetensors`` file: the model's ``state_dict`` as tensors, and
in the safetensors header (string metadata) the architecture name, its constructor
``config`` and the user's metadata, both as JSON:

============================ =====================================================
header key                   value
============================ =====================================================
``aalearn_format``           ``"checkpoint"``
``aalearn_format_version``   ``"1"``
``aalearn_version``          version of aalearn that wrote the file
``architecture``             registry name, for example ``"topodnn"``
``config``                   JSON of ``model.config``
``metadata``                 JSON of the user's metadata
============================ =====================================================

safetensors holds raw tensors only, so loading a checkpoint never unpickles anything;
the model is rebuilt from the registry (:data:`ARCHITECTURES`) and its config. Files
are written atomically (a temporary file in the target directory, then
:func:`os.replace`), so an interrupted save never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from aalearn import __version__
from aalearn.core.io import atomic_path
from aalearn.models.keras import KerasTopoDNN, load_keras_topodnn
from aalearn.models.onnx import load_onnx_model
from aalearn.models.topodnn import TopoDNN

__all__ = [
    "ARCHITECTURES",
    "CHECKPOINT_FORMAT_VERSION",
    "SHIPPED_MODELS",
    "architecture_name",
    "load_checkpoint",
    "load_model",
    "register_architecture",
    "save_checkpoint",
]

#: Version of the checkpoint layout written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT_VERSION = "1"

#: Architecture registry: name → class (or factory) called as ``factory(**config)``.
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {"topodnn": TopoDNN, "keras_topodnn": KerasTopoDNN}

#: Directory of the models shipped inside the package (each ``NAME.safetensors`` with a
#: model card ``NAME.md`` beside it).
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"

#: Models shipped with aalearn, loadable as ``load_model("aalearn:NAME")``:
#: ``robust`` — the challenge Task 2 model (see ``shipped/robust.md``).
SHIPPED_MODELS: dict[str, Path] = {"robust": SHIPPED_DIR / "robust.safetensors"}

_KERAS_SUFFIXES = (".hdf5", ".h5")
_SAFETENSORS_SUFFIXES = (".safetensors",)


def register_architecture(name: str, factory: Callable[..., nn.Module], *, overwrite: bool = False) -> None:
    """Register an architecture so that checkpoints of it can be saved and loaded.

    Args:
        name: Registry name stored in checkpoints (lower case, no spaces by convention).
        factory: Class or callable building the model from its ``config``:
            ``factory(**model.config)``.
        overwrite: Replace an existing entry instead of raising.

    Raises:
        ValueError: If ``name`` is empty or already registered (without ``overwrite``).

    Example:
        >>> class Tiny(TopoDNN):
        ...     pass
        >>> register_architecture("tiny-doc", Tiny)
        >>> architecture_name(Tiny(n_features=2, hidden=(2,)))
        'tiny-doc'
        >>> del ARCHITECTURES["tiny-doc"]
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"architecture name must be a non-empty string, got {name!r}")
    if name in ARCHITECTURES and not overwrite and ARCHITECTURES[name] is not factory:
        raise ValueError(f"architecture {name!r} is already registered; pass overwrite=True to replace it")
    ARCHITECTURES[name] = factory


def architecture_name(model: nn.Module) -> str:
    """Registry name of ``model``'s class (exact type match).

    Raises:
        ValueError: If the class is not registered.

    Example:
        >>> architecture_name(TopoDNN())
        'topodnn'
    """
    for name, factory in ARCHITECTURES.items():
        if type(model) is factory:
            return name
    raise ValueError(
        f"{type(model).__name__} is not a registered architecture (known: {_known()}); "
        "register it with aalearn.models.register_architecture(name, cls)"
    )


def _known() -> str:
    return ", ".join(sorted(ARCHITECTURES)) or "none"


def save_checkpoint(model: nn.Module, path: str | Path, *, metadata: Mapping[str, Any] | None = None) -> Path:
    """Save a model with its architecture, config and metadata to a safetensors file.

    Args:
        model: A model of a registered architecture with a ``config`` property.
        path: Target file, conventionally ending in ``.safetensors`` (which
            :func:`load_model` needs); parent directories are created.
        metadata: JSON-serialisable user metadata (training history, data source, ...).

    Returns:
        The path written.

    Raises:
        ValueError: For an unregistered architecture, a model without a dict ``config``
            or metadata that is not JSON-serialisable.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
        >>> _ = save_checkpoint(TopoDNN(n_features=3, hidden=(4,)), path, metadata={"epochs": 3})
        >>> model, meta = load_checkpoint(path)
        >>> meta
        {'epochs': 3}
    """
    path = Path(path)
    name = architecture_name(model)
    config = getattr(model, "config", None)
    if not isinstance(config, dict):
        raise ValueError(f"{type(model).__name__} has no dict 'config' property; it cannot be checkpointed")
    try:
        config_json = json.dumps(config, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the model config is not JSON-serialisable: {exc}") from exc
    try:
        metadata_json = json.dumps(dict(metadata or {}), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-serialisable: {exc}") from exc
    header = {
        "aalearn_format": "checkpoint",
        "aalearn_format_version": CHECKPOINT_FORMAT_VERSION,
        "aalearn_version": __version__,
        "architecture": name,
        "config": config_json,
        "metadata": metadata_json,
    }
    # safetensors refuses shared or non-contiguous storage: store independent CPU copies.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return path


def load_checkpoint(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: The ``.safetensors`` file.

    Returns:
        ``(model, metadata)``: the rebuilt model in eval mode on the CPU, and the user
        metadata given to :func:`save_checkpoint`.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a valid safetensors file (truncated, corrupt), not
            an aalearn checkpoint, names an unknown architecture, or its tensors do not
            match the architecture's config.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
        >>> _ = save_checkpoint(TopoDNN(n_features=3, hidden=(4,)), path)
        >>> load_checkpoint(path)[0].config["hidden"]
        [4]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{path} is not a valid safetensors file (truncated or corrupt?): {exc}") from exc
    if header.get("aalearn_format") != "checkpoint":
        raise ValueError(
            f"{path} is a safetensors file but not an aalearn checkpoint (no 'aalearn_format' key)"
        )
    version = header.get("aalearn_format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {version!r}; this aalearn reads version "
            f"{CHECKPOINT_FORMAT_VERSION}"
        )
    name = header.get("architecture", "")
    if name not in ARCHITECTURES:
        raise ValueError(f"{path}: unknown architecture {name!r} (known: {_known()})")
    try:
        config = json.loads(header.get("config", ""))
        metadata = json.loads(header.get("metadata", "{}"))
    except ValueError as exc:
        raise ValueError(f"{path}: corrupt config/metadata JSON in the header: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(metadata, dict):
        raise ValueError(f"{path}: config and metadata must be JSON objects")
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"{path}: the model is broken: tensor {key!r} contains NaN/inf (diverged training?)"
            )
    try:
        model = ARCHITECTURES[name](**config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot build architecture {name!r} from config {config}: {exc}") from exc
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{path}: the stored tensors do not match architecture {name!r}: {exc}") from exc
    return model.eval(), metadata


def load_model(spec: str | os.PathLike[str]) -> nn.Module:
    """Load a model from a checkpoint, a Keras HDF5 file or a shipped model name.

    Dispatch on ``spec``:

    * ``"aalearn:NAME"`` — a model shipped with aalearn (:data:`SHIPPED_MODELS`);
    * ``*.safetensors`` — :func:`load_checkpoint`;
    * ``*.hdf5`` / ``*.h5`` — :func:`aalearn.models.load_keras_topodnn`;
    * ``*.onnx`` — :func:`aalearn.models.onnx.load_onnx_model` (converted to torch).

    Pickle-based formats (``.pt``, ``.pth``, ``.pkl``) are deliberately not supported.

    Args:
        spec: Path or shipped-model name.

    Returns:
        The model in eval mode.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: For an unsupported suffix, an unknown shipped model or an invalid file.

    Example:
        >>> load_model("model.pt")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: unsupported model file 'model.pt': supported formats are .safetensors (...
    """
    if isinstance(spec, str) and spec.startswith("aalearn:"):
        name = spec.removeprefix("aalearn:")
        if name not in SHIPPED_MODELS:
            available = ", ".join(sorted(SHIPPED_MODELS)) or "none yet"
            raise ValueError(f"no shipped model named {name!r} (available: {available})")
        return load_checkpoint(SHIPPED_MODELS[name])[0]
    path = Path(spec)
    suffix = path.suffix.lower()
    if suffix in _SAFETENSORS_SUFFIXES:
        return load_checkpoint(path)[0]
    if suffix in _KERAS_SUFFIXES:
        return load_keras_topodnn(path)
    if suffix == ".onnx":
        return load_onnx_model(path)
    raise ValueError(
        f"unsupported model file {str(spec)!r}: supported formats are .safetensors (aalearn checkpoint), "
        ".hdf5/.h5 (Keras 2 weights), .onnx and 'aalearn:NAME' (shipped models)"
    )
