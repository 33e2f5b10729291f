"""Quality gates for rendered clips: frozen, unintended Ken Burns, identity drift, off-beat motion, flicker.

`QCAccumulator` measures a clip while it is encoded (constant memory); `qc_video` measures a file. Both give a
`QCReport` with a pass/fail verdict against `QCThresholds`. See docs/qc.md for the measures and thresholds.
"""

from __future__ import annotations

from .accumulator import QCAccumulator, qc_video
from .report import QCReport
from .thresholds import ALL_GATES, QCThresholds

__all__ = ["ALL_GATES", "QCAccumulator", "QCReport", "QCThresholds", "qc_video"]
