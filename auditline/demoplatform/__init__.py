"""``auditline demo``'s platform: a multi-region ML platform's day, judged as it happens.

``story`` holds the teams, datasets and movements as data; ``serving`` the churn model (a real
ONNX graph) trained, deployed and serving with drift injected part way; ``relay`` the hop that
rewrites one event in transit; ``detect`` the embedded detector stage (the embedded runner,
alerts published as events); ``show`` how it looks; ``run`` wires them on the story's clock.
``auditline.sinks.demo`` then stores it all and asks the auditor's questions.

``kafka`` runs the same day through a real broker (``auditline demo --kafka``): ``deployment``
starts the worker, the sink and the alert service as processes (``processes``), ``offsets``
tells how far they have got.
"""
