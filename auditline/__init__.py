"""auditline: audit and lineage streaming for AI platforms.

The core (this package) needs only confluent-kafka, fastavro and pydantic; the stream processors
(``auditline.streams``), the ClickHouse sink (``auditline.sinks``) and the ONNX wrapper come with
extras and are imported lazily.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from auditline.catalogue import Catalogue
from auditline.codec import Codec, make_codec
from auditline.errors import AuditlineError
from auditline.settings import AuditlineSettings, load_settings

try:
    __version__ = version("auditline")
except PackageNotFoundError:  # a source checkout that was never installed
    __version__ = "0.0.0+source"

__all__ = [
    "AuditlineError",
    "AuditlineSettings",
    "Catalogue",
    "Codec",
    "__version__",
    "load_settings",
    "make_codec",
]
