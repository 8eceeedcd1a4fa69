"""Model quality from outcomes (pure; the metrics need numpy: ``auditline[drift]``).

Ground truth arrives later than the prediction it judges, as ``Outcome`` events naming the
prediction (a single ``Prediction`` by id, or a ``PredictionBatch`` row). ``joiner`` pairs each
outcome with its prediction within a bounded horizon (each pair once); ``metrics`` accumulates
the pairs per model version in tumbling windows of the *prediction's* event time (accuracy,
precision and recall, AUC from the score, MAE and RMSE, label delay, join coverage); a window is
judged once the horizon for its predictions has passed, and ``degradation`` compares it with the
training run's reported metrics, with drift's alert episodes (``auditline.drift.episodes``):
``PerformanceAlert`` bodies. ``detector`` ties them together for one model version; the same
detector runs in the embedded runner (and, next, the faust worker).
"""
