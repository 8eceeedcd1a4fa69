"""Streaming drift detection bound to the training run (needs numpy: ``auditline[drift]``).

``reference`` (from a TrainingRun's feature profiles) → ``window`` (mergeable binned counts in
event-time tumbling windows) → ``stats`` (PSI, JS, KS, chi-squared, Benjamini-Hochberg) →
``detector`` (per-window verdicts and alert episodes: ``episodes``), with ``quality`` (missing,
out-of-range and mismatched values per feature: ``DataQualityAlert``) beside it. The same
detector runs in the faust worker, the embedded runner and ``auditline drift``.
"""
