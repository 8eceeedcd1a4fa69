"""``auditline demo``'s platform: a multi-region ML platform's day, judged as it happens.

``story`` holds the teams, datasets and movements as data; ``serving`` the churn model (a real
ONNX graph) trained, deployed and serving with drift injected part way; ``detect`` the detector
stage (the embedded runner, alerts published as events); ``show`` how it looks; ``run`` wires
them on the story's clock. ``auditline.sinks.demo`` then stores it all and asks the auditor's
questions.
"""
