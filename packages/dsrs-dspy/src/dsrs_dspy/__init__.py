"""dsrs-dspy: run DSPy programs on dsrs — a ``dsrs.LM`` or a ``dsrs.LaneMux`` as a ``dspy.LM``.

>>> import dspy, dsrs, dsrs_dspy
>>> dspy.configure(lm=dsrs_dspy.LM(dsrs.LM("fake:echo")))  # doctest: +SKIP

Built on DSPy 3.4's engine interface (``complete(Request) -> Response``), so no deprecated DSPy
path is used.
"""

from __future__ import annotations

from dsrs_dspy._engine import AsyncDsrsEngine, DsrsEngine
from dsrs_dspy._lm import LM, DsrsLM

__version__ = "0.1.0"

__all__ = ["LM", "AsyncDsrsEngine", "DsrsEngine", "DsrsLM", "__version__"]
