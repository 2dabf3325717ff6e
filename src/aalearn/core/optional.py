"""Import guards for optional dependency stacks (``pip install aalearn[x]``)."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]

_EXTRA_OF = {
    "pythia8mc": "hep",
    "fastjet": "hep",
    "awkward": "hep",
    "vector": "hep",
    "uproot": "hep",
    "dask": "dask",
    "distributed": "dask",
    "matplotlib": "report",
    "art": "bench",
    "pyhf": "inference",
    "iminuit": "inference",
    "sbi": "sbi",
    "zuko": "surrogates",
    "ot": "surrogates",
    "transformers": "llm",
    "gguf": "llm",
    "accelerate": "llm",
    "particle": "llm",
    "captum": "explain",
    "onnx": "onnx",
}


def require(module: str, *, purpose: str) -> ModuleType:
    """Import an optional dependency or explain how to install it.

    Args:
        module: Importable module name, for example ``"pythia8mc"``.
        purpose: What the caller needs it for (used in the error message).

    Returns:
        The imported module.

    Raises:
        ImportError: If the module is missing, naming the aalearn extra to install.

    Example:
        >>> np = require("numpy", purpose="arrays")
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        extra = _EXTRA_OF.get(module.split(".")[0])
        hint = f'pip install "aalearn[{extra}]"' if extra else f"pip install {module}"
        raise ImportError(f"{purpose} needs the package '{module}', which is not installed: {hint}") from exc
