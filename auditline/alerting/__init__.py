"""Alerts reaching people and systems: what an alert says (``view``), who wants which
(``subscriptions``, ``filters``), how it travels (``payloads``, ``signing``) and the deliveries
(terminal ``tail``, ``webhook``, ``sse``) over the alert topics (``source``). ``bodies`` maps the
detectors' decisions and findings to alert events."""
