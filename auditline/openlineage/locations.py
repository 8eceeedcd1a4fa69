"""Where is a dataset? (pure) The first of these that answers, in order:

1. ``facet``: the location the dataset's ``auditline`` facet declares;
2. ``inventory``: the first inventory rule whose ``pattern`` matches the dataset;
3. ``namespace``: a hint that is reliable, carried by the namespace (an S3 endpoint with its
   region, a Snowflake account locator with its region, a Redshift cluster's region) or, for
   data that lives where the job runs, by the run's own facets (a BigQuery job's location for
   BigQuery tables, a Dataproc cluster's region for that cluster's HDFS);
4. ``unknown``: no location, never a guess, with a note saying what was looked at.

Regions become countries through the region catalogue (``auditline.regions``). An inventory
rule's ``pattern`` is a glob (``*``, ``?``, ``[...]``; ``*`` also matches ``/``), case-
insensitive, tried against the dataset's namespace and against its identity ``namespace/name``
(one slash between them, as ``mapping.asset_id`` writes it): ``s3://eu-data-*`` places every
bucket whose name starts with ``eu-data-``, ``bigquery/acme.eu_*`` BigQuery datasets by name.
docs/openlineage.md "Where is a dataset?" says which hints are taken and which are not.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from auditline.errors import ConfigError
from auditline.events import Location
from auditline.events.types import CountryCode
from auditline.openlineage.facets import declared_location, job_facet
from auditline.regions import RegionError, catalogue, locate
from auditline.yamlfile import load_model

Source = Literal["facet", "inventory", "namespace", "unknown"]
_PLACE = ("provider", "region", "country")


@dataclass(frozen=True)
class Placement:
    """Where a dataset (or a run) is: ``location`` None when unknown; ``source`` says what
    answered; ``note`` says it, or what was looked at, for people."""

    location: Location | None
    source: Source
    note: str


class InventoryRule(BaseModel):
    """Datasets matching ``pattern`` (a glob, or a list of them) are at ``country``, or at the
    ``provider``'s ``region`` (the catalogue gives its country: checked when loaded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: tuple[str, ...] = Field(min_length=1)
    provider: str | None = None
    region: str | None = None
    country: CountryCode | None = None
    note: str = ""

    @field_validator("pattern", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("pattern")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not all(p.strip() for p in value):
            raise PydanticCustomError("empty_pattern", "a pattern is empty: give a glob")
        return value

    @model_validator(mode="before")
    @classmethod
    def _completed(cls, data: Any) -> Any:
        """The provider and region as the catalogue spells them, the country filled in from
        the region; an unknown region without a country, or a contradiction, is refused."""
        if not isinstance(data, Mapping):
            return data
        given = {k: data[k] for k in _PLACE if data.get(k) is not None}
        if not given:
            raise PydanticCustomError(
                "no_location", "the rule places nothing: give a country, or a provider and region"
            )
        try:
            done = locate(given)
        except RegionError as exc:
            raise PydanticCustomError(exc.kind, "{reason}", {"reason": str(exc)}) from None
        return {**data, **{k: done[k] for k in _PLACE if done.get(k) is not None}}

    @property
    def location(self) -> Location:
        return _location(str(self.country), self.provider, self.region)

    def matches(self, namespace: str, identity: str) -> bool:
        return any(
            (glob := _glob(p)).match(namespace) or glob.match(identity) for p in self.pattern
        )


class Inventory(BaseModel):
    """Where datasets are, by pattern (docs/openlineage.md shows the file); the first rule
    that matches wins."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: tuple[InventoryRule, ...] = ()

    def match(self, namespace: str, name: str) -> tuple[int, InventoryRule] | None:
        """The first rule (1-based number, rule) matching the dataset, else None."""
        identity = identity_of(namespace, name)
        return next(
            (
                (i, rule)
                for i, rule in enumerate(self.rules, 1)
                if rule.matches(namespace, identity)
            ),
            None,
        )

    def to_json(self) -> dict[str, Any]:
        return {"rules": [_rule_json(rule) for rule in self.rules]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Inventory:
        return cls.model_validate(data)


def load_inventory(path: str | Path) -> Inventory:
    """The inventory in the YAML or JSON file at ``path``; a ``ConfigError`` naming the file,
    the line (YAML) and the rule if it is not valid."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return load_model(path, Inventory, ConfigError, "location inventory")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the location inventory ({exc.strerror})") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    try:
        return Inventory.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {field}: {first['msg']}") from exc


def identity_of(namespace: str, name: str) -> str:
    """``namespace/name`` with one slash between them (``mapping.asset_id``'s identity)."""
    return f"{namespace.rstrip('/')}/{name.lstrip('/')}"


def resolve(  # noqa: PLR0917 - the mapping's call: a dataset, its job's and run's facets
    namespace: str,
    name: str,
    dataset_facets: Mapping[str, Any] | None,
    job_facets: Mapping[str, Any] | None,
    run_facets: Mapping[str, Any] | None,
    inventory: Inventory,
) -> Placement:
    """Where the dataset ``namespace``/``name`` is (the module docstring gives the order)."""
    declared, problem = declared_location(dataset_facets)
    if declared is not None:
        return Placement(declared, "facet", "declared by the dataset's auditline facet")
    before = f"{problem}; " if problem else ""
    found = inventory.match(namespace, name)
    if found is not None:
        number, rule = found
        said = f": {rule.note}" if rule.note else ""
        where = f"{before}inventory rule {number} ({', '.join(rule.pattern)}){said}"
        return Placement(rule.location, "inventory", where)
    hint = _hint(namespace, job_facets or {}, run_facets or {})
    if hint is not None and hint[0] is not None:
        return Placement(hint[0], "namespace", before + hint[1])
    why = hint[1] if hint is not None else "no reliable hint in the namespace"
    return Placement(
        None, "unknown", f"{before}no auditline facet location, no inventory rule, {why}"
    )


def where_run(
    job_facets: Mapping[str, Any] | None, run_facets: Mapping[str, Any] | None
) -> Placement:
    """Where a run's processing happens: the job's ``auditline`` facet location, else the
    region of the Dataproc cluster or batch it runs on, else the location of the BigQuery job
    it ran, else unknown."""
    notes: list[str] = []
    declared = job_facet(job_facets, notes)
    if declared is not None and declared.location is not None:
        return Placement(declared.location, "facet", "declared by the job's auditline facet")
    before = "".join(f"{note}; " for note in notes)
    for found in (_dataproc(job_facets or {}), _bigquery_job(run_facets or {})):
        if found is not None and found[0] is not None:
            return Placement(found[0], "namespace", before + found[1])
    return Placement(None, "unknown", f"{before}no auditline job facet location and no "
                     "Dataproc or BigQuery location in the run's facets")  # fmt: skip


# ---- hints ---------------------------------------------------------------------------------

Hint = tuple[Location | None, str]
"""A location (None: the hint says where it cannot tell) and what it was read from."""
_S3_PREFIXES = ("s3-website-", "s3-fips-", "s3-")
_CLOUDS = {"aws": "aws", "azure": "azure", "gcp": "gcp"}


def _hint(
    namespace: str, job_facets: Mapping[str, Any], run_facets: Mapping[str, Any]
) -> Hint | None:
    scheme = namespace.partition("://")[0].lower()
    host = _host(namespace)
    if scheme == "bigquery":
        return _bigquery_tables(run_facets)
    if scheme == "hdfs":
        return _cluster_hdfs(host, job_facets, run_facets)
    read = _BY_SCHEME.get(scheme) or (_redshift if host.endswith(_REDSHIFT_HOSTS) else _s3)
    return read(host)


def _host(namespace: str) -> str:
    try:
        return (urlsplit(namespace).hostname or "").lower()
    except ValueError:
        return ""


def _azure(host: str) -> Hint:
    return None, "an Azure storage account's address names no region"


def _s3(host: str) -> Hint | None:
    """``bucket.s3.eu-west-1.amazonaws.com``, ``bucket.s3-eu-west-1.amazonaws.com``,
    ``s3.dualstack.eu-west-1.amazonaws.com`` ...; ``bucket.s3.amazonaws.com`` names none."""
    labels = host.split(".")
    if "amazonaws" not in labels:
        return None
    at = labels.index("amazonaws")
    if at == 0 or not any(label.startswith("s3") for label in labels[:at]):
        return None
    last = labels[at - 1]
    candidates = [last] + [last[len(p) :] for p in _S3_PREFIXES if last.startswith(p)]
    for region in candidates:
        found = _region("aws", region)
        if found is not None:
            return found, f"S3 endpoint region {found.region} in the namespace"
    return None, "the S3 endpoint in the namespace names no catalogued region"


def _snowflake(host: str) -> Hint:
    """``snowflake://{locator}[.{compliance}].{region}[.{cloud}]`` (the legacy account
    locator form); ``orgname-accountname`` carries no region."""
    parts = host.removesuffix(".snowflakecomputing.com").removesuffix(".privatelink").split(".")
    if "-" in parts[0] or len(parts) < 2:
        return None, "a Snowflake account name without a region"
    cloud = _CLOUDS.get(parts[-1])
    region = parts[-2] if cloud else parts[-1]
    provider = cloud or "aws"  # the locator form leaves the cloud out for AWS only
    if provider == "aws" and region == "us-west-1":
        return None, (
            "Snowflake locator region us-west-1 is the default the OpenLineage dbt and Airflow "
            "integrations write for a locator without a region (Snowflake has no us-west-1)"
        )
    spelled = region.replace("-", "") if provider == "azure" else region.removesuffix("-gov")
    found = _region(provider, spelled)
    if found is None:
        return None, f"Snowflake {provider} region {region} is not in the region catalogue"
    return found, f"Snowflake account locator region {region} ({provider}) in the namespace"


def _redshift(host: str) -> Hint:
    """``redshift://{cluster}.{region}:{port}`` (OpenLineage naming) or an endpoint host
    ``{cluster}.{id}.{region}.redshift[-serverless].amazonaws.com``."""
    labels = host.split(".")
    at = next((i for i, label in enumerate(labels) if label.startswith("redshift")), len(labels))
    region = labels[at - 1] if at < len(labels) and at > 0 else labels[-1]
    found = _region("aws", region)
    if found is None:
        return None, "the Redshift address in the namespace names no catalogued region"
    return found, f"Redshift region {found.region} in the namespace"


def _bigquery_tables(run_facets: Mapping[str, Any]) -> Hint:
    """A BigQuery query, load or extract job runs where the tables it names are (BigQuery
    requires it); a copy job may cross locations, so it places nothing."""
    job = _bigquery_properties(run_facets)
    if job is None:
        return None, "a BigQuery table, and no BigQuery job location in the run's facets"
    config = job.get("configuration")
    if isinstance(config, Mapping) and "copy" in config:
        return None, "a BigQuery copy job may cross locations: its location places nothing"
    found = _bigquery_job(run_facets)
    return found if found is not None else (None, "a BigQuery job without a location")


def _bigquery_job(run_facets: Mapping[str, Any]) -> Hint | None:
    """The location of the BigQuery job the Airflow Google provider reports in the
    ``bigQueryJob`` (or older ``bigQuery_job``) run facet: ``properties`` is the job resource
    as JSON, ``jobReference.location`` its location."""
    job = _bigquery_properties(run_facets)
    reference = job.get("jobReference") if job is not None else None
    where = reference.get("location") if isinstance(reference, Mapping) else None
    if not isinstance(where, str) or not where:
        return None
    if where.upper() == "US":  # the US multi-region: data centres in the United States only
        return Location(country="US", provider="gcp", region="US"), "BigQuery job location US"
    found = _region("gcp", where.lower())
    if found is None:
        return None, f"BigQuery location {where} is a multi-region or not in the catalogue"
    return found, f"BigQuery job location {where} (run facet bigQueryJob)"


def _bigquery_properties(run_facets: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for key in ("bigQueryJob", "bigQuery_job"):
        facet = run_facets.get(key)
        properties = facet.get("properties") if isinstance(facet, Mapping) else None
        if isinstance(properties, str):
            try:
                properties = json.loads(properties)
            except ValueError:
                continue
        if isinstance(properties, Mapping):
            return properties
    return None


def _dataproc(job_facets: Mapping[str, Any]) -> Hint | None:
    """The region in the ``gcp_lineage`` job facet's origin, which the Spark integration
    writes on Dataproc: ``projects/{p}/regions/{region}/clusters/{c}`` or
    ``projects/{p}/locations/{region}/batches/{b}``."""
    facet = job_facets.get("gcp_lineage")
    origin = facet.get("origin") if isinstance(facet, Mapping) else None
    name = origin.get("name") if isinstance(origin, Mapping) else None
    if not isinstance(name, str):
        return None
    match = re.match(r"projects/[^/]+/(?:regions|locations)/([^/]+)/", name)
    if match is None:
        return None
    found = _region("gcp", match.group(1))
    if found is None:
        return None, f"Dataproc region {match.group(1)} is not in the region catalogue"
    return found, f"Dataproc region {found.region} (job facet gcp_lineage)"


def _cluster_hdfs(host: str, job_facets: Mapping[str, Any], run_facets: Mapping[str, Any]) -> Hint:
    """HDFS on the Dataproc cluster the job runs on (its master, ``{cluster}-m``) is in the
    cluster's region; other HDFS says nothing of where it is."""
    facet = run_facets.get("gcp_dataproc")
    cluster = facet.get("clusterName") if isinstance(facet, Mapping) else None
    if not isinstance(cluster, str) or not cluster:
        return None, "an HDFS namenode address names no region"
    master = f"{cluster.lower()}-m"
    if host != master and not host.startswith((f"{master}-", f"{master}.")):
        return None, f"HDFS outside the job's Dataproc cluster {cluster}"
    found = _dataproc(job_facets)
    if found is None or found[0] is None:
        return None, f"HDFS of Dataproc cluster {cluster}, whose region the facets do not give"
    return found[0], f"HDFS of the job's Dataproc cluster {cluster}, {found[1]}"


_BY_SCHEME: dict[str, Callable[[str], Hint | None]] = {
    "snowflake": _snowflake, "redshift": _redshift,
    "abfss": _azure, "abfs": _azure, "wasbs": _azure, "wasb": _azure,
}  # fmt: skip
_REDSHIFT_HOSTS = (".redshift.amazonaws.com", ".redshift-serverless.amazonaws.com")


@lru_cache(maxsize=1024)
def _region(provider: str, region: str) -> Location | None:
    """The catalogued region as a Location (with its country), or None."""
    found = catalogue().get(provider, region)
    if found is None:
        return None
    return Location(country=found.country, provider=found.provider, region=found.region)


@lru_cache(maxsize=4096)
def _location(country: str, provider: str | None, region: str | None) -> Location:
    return Location(country=country, provider=provider, region=region)


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def _rule_json(rule: InventoryRule) -> dict[str, Any]:
    data = rule.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    data["pattern"] = rule.pattern[0] if len(rule.pattern) == 1 else list(rule.pattern)
    return data
