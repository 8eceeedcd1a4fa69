"""The auditor's console: a read-only local web app over the audit store (``auditline console``).

``views`` reads each screen's data from the store, ``app`` serves it as a JSON API with the page
and its static files (``static/``, no CDN: Cytoscape.js is vendored), ``cli`` runs it.
docs/console.md documents the API.
"""
