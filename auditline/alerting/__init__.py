"""Alerts reaching people and systems: what an alert says (``view``), who wants which
(``subscriptions``: filters and deliveries), how it travels (``payloads``: bodies and
signatures) and the deliveries (terminal ``tail``, ``webhook``, ``sse``, run together by
``service``, observed by ``metrics``) over the alert topics (``source``). ``bodies`` maps the
detectors' decisions and findings to alert events."""
