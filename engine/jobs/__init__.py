"""Batch rendering at scale: a crash-safe job store, content-addressed jobs, local and Ray executors.

`run_batch` is the one entry point (the timeline pipeline and `stillmotion jobs retry` call it); `JobStore` is the
history the CLI and the panel read. Ray is imported only when the "ray" executor is used.
"""

from __future__ import annotations

from .batch import EXECUTORS, BatchItem, JobEvent, run_batch
from .identity import file_digest, identity, job_id
from .store import STATUSES, JobStore, default_data_dir, default_store_path

__all__ = ["EXECUTORS", "STATUSES", "BatchItem", "JobEvent", "JobStore", "default_data_dir", "default_store_path",
           "file_digest", "identity", "job_id", "run_batch"]
