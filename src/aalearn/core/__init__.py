"""What every layer of aalearn needs once: the bottom layer, importing nothing of aalearn above it.

* :mod:`aalearn.core.validation` -- input checks (``ValueError`` for bad values,
  ``TypeError`` for bad types);
* :mod:`aalearn.core.io` -- atomic writes; :mod:`aalearn.core.jsonutil` -- JSON with one
  NaN/inf policy;
* :mod:`aalearn.core.seeding` -- seeds, generators and child seeds;
* :mod:`aalearn.core.registry` -- a generic name → object registry;
* :mod:`aalearn.core.result` -- the :class:`~aalearn.core.result.Result` protocol;
* :mod:`aalearn.core.config` -- :class:`~aalearn.core.config.TrainConfig`;
* :mod:`aalearn.core.plotting` -- the figure style; :mod:`aalearn.core.paths` -- the
  challenge files and the cache; :mod:`aalearn.core.optional` -- optional dependencies;
* :mod:`aalearn.core.parallel` -- the Dask layer (local cluster or ``tcp://`` scheduler).
"""

from __future__ import annotations

__all__: list[str] = []
