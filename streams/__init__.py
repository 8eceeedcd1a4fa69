"""faust-streaming processors wiring the core detectors to topics (installed as auditline.streams).

Needs the ``streams`` extra. The agents arrive with the sovereignty and drift issues; this
package only depends on the ``auditline`` core, never on ``auditline.sinks``.
"""
