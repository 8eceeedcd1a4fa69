"""locations: where a dataset is — the auditline facet, the inventory, reliable hints, or
unknown (never a guess)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditline.errors import ConfigError
from auditline.events import Location
from auditline.openlineage.locations import (
    Inventory,
    InventoryRule,
    Placement,
    identity_of,
    load_inventory,
    resolve,
    where_run,
)
from auditline.openlineage.validation import check

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "openlineage"
EU = {"pattern": "s3://eu-data-*", "provider": "aws", "region": "eu-central-1"}
NOTHING = Inventory()


def at(namespace: str, name: str = "t", inventory: Inventory = NOTHING, *,
       dataset: dict[str, Any] | None = None, job: dict[str, Any] | None = None,
       run: dict[str, Any] | None = None) -> Placement:  # fmt: skip
    return resolve(namespace, name, dataset or {}, job or {}, run or {}, inventory)


def country(placement: Placement) -> str | None:
    return placement.location.country if placement.location else None


def inventory(*rules: dict[str, Any]) -> Inventory:
    return Inventory.model_validate({"rules": list(rules)})


def facet_at(**location: Any) -> dict[str, Any]:
    return {"auditline": {"_producer": "p", "_schemaURL": "s", "location": location}}


# ---- the order ------------------------------------------------------------------------------


def test_the_facet_comes_first_then_the_inventory_then_hints() -> None:
    rules = inventory({"pattern": "snowflake://*", "country": "FR"})
    namespace = "snowflake://xy12345.eu-central-1"
    declared = at(namespace, inventory=rules, dataset=facet_at(country="CH"))
    assert (country(declared), declared.source) == ("CH", "facet")
    assert declared.note == "declared by the dataset's auditline facet"
    listed = at(namespace, inventory=rules)
    assert (country(listed), listed.source) == ("FR", "inventory")
    hinted = at(namespace)
    assert (country(hinted), hinted.source) == ("DE", "namespace")


def test_a_facet_location_that_does_not_fit_falls_through_with_its_reason() -> None:
    placed = at("s3://eu-data-x", inventory=inventory(EU),
                dataset=facet_at(provider="aws", region="eu-cental-1"))  # fmt: skip
    assert (country(placed), placed.source) == ("DE", "inventory")
    assert placed.note.startswith("the auditline facet of the dataset: location does not fit")
    assert "close matches: eu-central-1" in placed.note
    assert placed.note.endswith("; inventory rule 1 (s3://eu-data-*)")


def test_a_facet_location_by_region_gets_its_country() -> None:
    placed = at("s3://x", dataset=facet_at(provider="Amazon", region="eu-west-3"))
    assert placed.location == Location(country="FR", provider="aws", region="eu-west-3")


def test_unknown_is_none_and_says_what_was_looked_at() -> None:
    placed = at("s3://somewhere", "raw/data.csv")
    assert placed == Placement(
        None, "unknown", "no auditline facet location, no inventory rule, no reliable hint in "
        "the namespace",
    )  # fmt: skip


# ---- the inventory --------------------------------------------------------------------------


def test_a_pattern_matches_the_namespace_or_the_identity_case_insensitively() -> None:
    rules = inventory(
        {"pattern": "s3://eu-data-*", "provider": "aws", "region": "eu-central-1"},
        {"pattern": ["bigquery/acme.eu_*", "bigquery/acme.de_*"], "country": "DE"},
        {"pattern": "postgres://db.acme.internal:5432", "country": "NL", "note": "Amsterdam DC"},
    )
    assert country(at("s3://eu-data-lake", "raw/x", rules)) == "DE"
    assert country(at("S3://EU-DATA-Lake", "k", rules)) == "DE"
    assert country(at("bigquery", "acme.de_sales.orders", rules)) == "DE"
    assert country(at("bigquery", "acme.us_sales.orders", rules)) is None
    placed = at("postgres://db.acme.internal:5432", "shop.public.orders", rules)
    assert (country(placed), placed.note) == ("NL", "inventory rule 3 (postgres://db.acme."
                                              "internal:5432): Amsterdam DC")  # fmt: skip
    assert identity_of("s3://b/", "/k") == "s3://b/k"


def test_the_first_matching_rule_wins() -> None:
    rules = inventory({"pattern": "s3://eu-data-archive*", "country": "IE"}, EU)
    assert country(at("s3://eu-data-archive-2020", inventory=rules)) == "IE"
    assert rules.match("s3://eu-data-lake", "k") == (2, rules.rules[1])
    assert rules.match("s3://other", "k") is None


def test_a_rule_is_completed_from_the_catalogue_when_loaded() -> None:
    rule = InventoryRule.model_validate({"pattern": "x", "provider": "Google Cloud",
                                         "region": "europe-west3"})  # fmt: skip
    assert (rule.provider, rule.region, rule.country) == ("gcp", "europe-west3", "DE")
    assert rule.location == Location(country="DE", provider="gcp", region="europe-west3")
    on_premises = InventoryRule.model_validate({"pattern": "hdfs://*", "country": "DE"})
    assert on_premises.location == Location(country="DE")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"pattern": "x", "provider": "aws", "region": "eu-cental-1"},
         "aws region 'eu-cental-1' is not in the region catalogue"),
        ({"pattern": "x", "provider": "aws", "region": "eu-central-1", "country": "FR"},
         "aws region eu-central-1 is in DE (Europe (Frankfurt)), but the location gives country FR"),
        ({"pattern": "x", "provider": "aws"}, "the location names provider 'aws' but no region"),
        ({"pattern": "x"}, "the rule places nothing: give a country, or a provider and region"),
        ({"pattern": "", "country": "DE"}, "a pattern is empty: give a glob"),
        ({"pattern": [], "country": "DE"}, "Tuple should have at least 1 item"),
        ({"pattern": "x", "country": "de"}, "String should match pattern"),
        ({"pattern": "x", "country": "DE", "zone": "a"}, "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_a_bad_rule_is_one_clear_line_naming_file_line_and_rule(
    tmp_path: Path, rule: dict[str, Any], message: str
) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("rules:\n  - pattern: 's3://ok'\n    country: DE\n"
                    + "".join(f"  {'-' if i == 0 else ' '} {k}: {json.dumps(v)}\n"
                              for i, (k, v) in enumerate(rule.items())))  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_inventory(path)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(f"{path}:") and ": rules.1" in text
    assert message in text


def test_json_inventories_load_and_explain_errors_too(tmp_path: Path) -> None:
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"rules": [EU]}, indent="\t"))
    assert load_inventory(path) == inventory(EU)
    path.write_text(json.dumps({"rules": [{**EU, "region": "mars-1"}]}))
    with pytest.raises(ConfigError, match=r"inventory\.json: rules\.0: aws region 'mars-1'"):
        load_inventory(path)
    path.write_text("{rules: ")
    with pytest.raises(ConfigError, match=r"inventory\.json: not valid JSON: "):
        load_inventory(path)
    with pytest.raises(ConfigError, match="cannot read the location inventory"):
        load_inventory(tmp_path / "missing.json")


def test_the_fixtures_inventory_loads() -> None:
    rules = load_inventory(FIXTURES / "inventory.yaml")
    assert [r.country for r in rules.rules] == ["DE", "US", "DE"]


def test_an_inventory_round_trips_through_json() -> None:
    rules = inventory(EU, {"pattern": ["a*", "b*"], "country": "CH", "note": "Zurich"},
                      {"pattern": "c", "provider": "azure", "region": "germanywestcentral"})  # fmt: skip
    data = json.loads(json.dumps(rules.to_json()))
    assert Inventory.from_json(data) == rules
    assert data["rules"][0] == {**EU, "country": "DE"}
    assert data["rules"][1] == {"pattern": ["a*", "b*"], "country": "CH", "note": "Zurich"}


@given(st.lists(st.sampled_from([
    {"pattern": "s3://eu-*", "provider": "aws", "region": "eu-central-1"},
    {"pattern": ["gs://x*", "gs://y*"], "provider": "gcp", "region": "europe-west1"},
    {"pattern": "postgres://*", "country": "NL", "note": "on premises"},
    {"pattern": "abfss://*@acct.dfs.core.windows.net", "provider": "azure", "region": "westeurope"},
]), max_size=6))  # fmt: skip
def test_any_inventory_round_trips(rules: list[dict[str, Any]]) -> None:
    made = inventory(*rules)
    assert Inventory.from_json(json.loads(json.dumps(made.to_json()))) == made


# ---- hints ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        ("s3://bucket.s3.eu-west-1.amazonaws.com", ("aws", "eu-west-1", "IE")),
        ("s3a://bucket.s3-eu-west-3.amazonaws.com", ("aws", "eu-west-3", "FR")),
        ("https://s3.dualstack.ap-south-1.amazonaws.com", ("aws", "ap-south-1", "IN")),
        ("https://bucket.s3.cn-north-1.amazonaws.com.cn", ("aws", "cn-north-1", "CN")),
        ("s3://bucket.s3-website-us-east-2.amazonaws.com", ("aws", "us-east-2", "US")),
        ("snowflake://xy12345.eu-central-1", ("aws", "eu-central-1", "DE")),
        ("snowflake://ASDF1234.eu-central-1.aws", ("aws", "eu-central-1", "DE")),
        ("snowflake://xy12345.us-east-2.aws", ("aws", "us-east-2", "US")),
        ("snowflake://xy12345.west-europe.azure", ("azure", "westeurope", "NL")),
        ("snowflake://xy12345.switzerland-north.azure", ("azure", "switzerlandnorth", "CH")),
        ("snowflake://xy12345.europe-west4.gcp", ("gcp", "europe-west4", "NL")),
        ("snowflake://xy12345.fhplus.us-gov-west-1.aws", ("aws", "us-gov-west-1", "US")),
        ("snowflake://xy12345.us-east-1-gov.aws", ("aws", "us-east-1", "US")),
        ("snowflake://xy12345.europe-west3.gcp.europe-west3.gcp", ("gcp", "europe-west3", "DE")),
        ("redshift://analytics.eu-north-1:5439", ("aws", "eu-north-1", "SE")),
        ("redshift://wg.123456789012.eu-west-2.redshift-serverless.amazonaws.com:5439",
         ("aws", "eu-west-2", "GB")),
        ("postgres://cl.abc123.ap-southeast-2.redshift.amazonaws.com:5439",
         ("aws", "ap-southeast-2", "AU")),
    ],
)  # fmt: skip
def test_the_namespace_places_what_it_reliably_says(
    namespace: str, expected: tuple[str, str, str]
) -> None:
    placed = at(namespace)
    assert placed.source == "namespace" and placed.location is not None
    assert (placed.location.provider, placed.location.region, placed.location.country) == expected


@pytest.mark.parametrize(
    ("namespace", "why"),
    [
        ("s3://eu-central-1", "no reliable hint"),  # a bucket named like a region says nothing
        ("s3://bucket.s3.amazonaws.com", "the S3 endpoint in the namespace names no catalogued"),
        ("https://eu-west-1.s3.amazonaws.com", "the S3 endpoint in the namespace names no"),
        ("gs://eu-bucket", "no reliable hint"),
        ("snowflake://myorg-analytics", "a Snowflake account name without a region"),
        ("snowflake://xy12345", "a Snowflake account name without a region"),
        ("snowflake://xy12345.us-west-1.aws", "the default the OpenLineage dbt and Airflow"),
        ("snowflake://xy12345.mars-1.aws", "Snowflake aws region mars-1 is not in the region"),
        ("abfss://raw@acmelake.dfs.core.windows.net", "an Azure storage account's address"),
        ("wasbs://raw@acmelake.blob.core.windows.net", "an Azure storage account's address"),
        ("arn:aws:glue:eu-central-1:123456789012", "no reliable hint"),
        ("awsathena://athena.eu-central-1.amazonaws.com", "no reliable hint"),  # the engine's
        ("redshift://analytics:5439", "the Redshift address in the namespace names no"),
        ("kafka://broker:9092", "no reliable hint"),
        ("file", "no reliable hint"),
        ("hdfs://namenode:8020", "an HDFS namenode address names no region"),
        ("bigquery", "a BigQuery table, and no BigQuery job location in the run's facets"),
        ("not a [url", "no reliable hint"),
    ],
)  # fmt: skip
def test_what_the_namespace_does_not_reliably_say_stays_unknown(namespace: str, why: str) -> None:
    placed = at(namespace)
    assert (placed.location, placed.source) == (None, "unknown")
    assert why in placed.note


def bigquery_job(location: str | None, *, key: str = "bigQueryJob", kind: str = "query",
                 as_text: bool = True) -> dict[str, Any]:  # fmt: skip
    job: dict[str, Any] = {
        "configuration": {kind: {}},
        "jobReference": {"projectId": "acme", "jobId": "j1"},
    }
    if location is not None:
        job["jobReference"]["location"] = location
    properties = json.dumps(job) if as_text else job
    return {key: {"_producer": "p", "_schemaURL": "s", "cached": False, "properties": properties}}


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        (bigquery_job("europe-west3"), "DE"),
        (bigquery_job("EUROPE-WEST3", key="bigQuery_job"), "DE"),
        (bigquery_job("asia-northeast1", as_text=False), "JP"),
        (bigquery_job("US"), "US"),
        (bigquery_job("EU"), None),  # a multi-region over several countries
        (bigquery_job("europe-west3", kind="copy"), None),  # a copy may cross locations
        (bigquery_job(None), None),
        ({"bigQueryJob": {"properties": "{not json"}}, None),
    ],
)
def test_bigquery_tables_are_where_their_query_job_ran(
    run: dict[str, Any], expected: str | None
) -> None:
    placed = at("bigquery", "acme.sales.orders", run=run)
    assert country(placed) == expected
    assert placed.source == ("namespace" if expected else "unknown")


DATAPROC_JOB = {
    "gcp_lineage": {
        "_producer": "p",
        "_schemaURL": "s",
        "origin": {
            "sourceType": "DATAPROC",
            "name": "projects/acme/regions/europe-west3/clusters/etl",
        },
    }
}
DATAPROC_RUN = {"gcp_dataproc": {"_producer": "p", "_schemaURL": "s", "clusterName": "etl",
                                 "appId": "a", "appName": "n", "jobType": "dataproc_job"}}  # fmt: skip


@pytest.mark.parametrize(
    ("namespace", "expected"),
    [
        ("hdfs://etl-m:8020", "DE"),
        ("hdfs://etl-m-0.europe-west3-a.c.acme.internal:8020", "DE"),
        ("hdfs://etl-m.europe-west3-a.c.acme.internal", "DE"),
        ("hdfs://other-m:8020", None),  # not the job's cluster
        ("gs://etl-bucket", None),  # a bucket may be anywhere: the cluster's region says nothing
    ],
)
def test_hdfs_of_the_job_s_dataproc_cluster_is_in_its_region(
    namespace: str, expected: str | None
) -> None:
    assert country(at(namespace, job=DATAPROC_JOB, run=DATAPROC_RUN)) == expected


def test_where_a_run_happens() -> None:
    declared = where_run({"auditline": {"location": {"country": "CH"}}}, {})
    assert (country(declared), declared.source) == ("CH", "facet")
    dataproc = where_run(DATAPROC_JOB, DATAPROC_RUN)
    assert (country(dataproc), dataproc.note) == ("DE", "Dataproc region europe-west3 (job facet "
                                                  "gcp_lineage)")  # fmt: skip
    batch = {"gcp_lineage": {"origin": {"name": "projects/p/locations/us-central1/batches/b1"}}}
    assert country(where_run(batch, {})) == "US"
    assert country(where_run({}, bigquery_job("europe-north1"))) == "FI"
    unknown = where_run({"auditline": {"location": {"country": "XXX"}}}, {})
    assert unknown.location is None and unknown.source == "unknown"
    assert unknown.note.startswith("the auditline facet of the job: location does not fit")


# ---- the fixtures -----------------------------------------------------------------------------


def fixture(name: str) -> list[dict[str, Any]]:
    return [check(e).event for e in json.loads((FIXTURES / name).read_text())]


def placements(event: dict[str, Any], rules: Inventory) -> dict[str, str | None]:
    job, run = event["job"].get("facets", {}), event["run"].get("facets", {})
    return {
        identity_of(d["namespace"], d["name"]): country(
            resolve(d["namespace"], d["name"], d.get("facets"), job, run, rules)
        )
        for d in (*event.get("inputs", ()), *event.get("outputs", ()))
    }


def test_the_breach_fixture_reads_in_de_and_writes_in_us() -> None:
    rules = load_inventory(FIXTURES / "inventory.yaml")
    complete = fixture("spark/residency_breach_de_to_us.json")[-1]
    assert placements(complete, rules) == {
        "s3://eu-data-customers/crm/customers": "DE",
        "s3://us-data-marketing/exports/customers_daily": "US",
    }
    assert placements(complete, NOTHING) == dict.fromkeys(placements(complete, rules))


def test_the_dbt_fixture_is_placed_by_its_snowflake_locator() -> None:
    for event in fixture("dbt/run_complete_models.json"):
        assert set(placements(event, NOTHING).values()) == {"DE"}
