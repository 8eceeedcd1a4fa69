"""The platform's story as data: places, parties, datasets and what happens to them (pure).

A multi-region ML platform on one day (2 March 2026, UTC): teams in the EU (Frankfurt, Paris,
Dublin), the UK, India, China, Russia and Japan declare their datasets (each with its
classification, the jurisdictions of its data subjects and, for some, a residency pin), then copy
them across borders, some lawfully (adequacy, a DPF-certified importer, SCCs with a transfer
impact assessment, the UK's IDTA, a filed Chinese standard contract, a Roskomnadzor notification)
and some not. Which rule each step should trip is the default policy pack's to say; ``expect``
only tells the people watching what to look for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from auditline.events import (
    AssetDeclared,
    AssetKind,
    Certification,
    CertificationStatus,
    Classification,
    DataMovement,
    Event,
    Location,
    MechanismKind,
    MovementOperation,
    Party,
    PartyRole,
    TransferMechanism,
)

DAY = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

FRANKFURT = Location(country="DE", provider="aws", region="eu-central-1")
PARIS = Location(country="FR", provider="aws", region="eu-west-3")
DUBLIN = Location(country="IE", provider="aws", region="eu-west-1")
LONDON = Location(country="GB", provider="aws", region="eu-west-2")
VIRGINIA = Location(country="US", provider="aws", region="us-east-1")
MUMBAI = Location(country="IN", provider="aws", region="ap-south-1")
HYDERABAD = Location(country="IN", provider="aws", region="ap-south-2")
SINGAPORE = Location(country="SG", provider="aws", region="ap-southeast-1")
BEIJING = Location(country="CN", provider="aws", region="cn-north-1")
MOSCOW = Location(country="RU")
TOKYO = Location(country="JP", provider="aws", region="ap-northeast-1")


@dataclass(frozen=True)
class Team:
    """A producer on the platform: a service in one country (its own signed streams)."""

    service: str
    instance: str
    country: str


EU_DATA = Team("eu-data-platform", "fra-1", "DE")
UK_ANALYTICS = Team("uk-analytics", "lon-1", "GB")
IN_PAYMENTS = Team("in-payments", "mum-1", "IN")
CN_COMMERCE = Team("cn-commerce", "bjs-1", "CN")
RU_SUBSCRIPTIONS = Team("ru-subscriptions", "mow-1", "RU")
JP_LOYALTY = Team("jp-loyalty", "tyo-1", "JP")
ML_TRAINING = Team("ml-training", "fra-gpu-1", "DE")
CHURN_SERVING = Team("churn-serving", "fra-inf-1", "DE")
WORKER = Team("demo-worker", "worker-1", "DE")
TEAMS = (EU_DATA, UK_ANALYTICS, IN_PAYMENTS, CN_COMMERCE, RU_SUBSCRIPTIONS, JP_LOYALTY,
         ML_TRAINING, CHURN_SERVING)  # fmt: skip


def _party(entity: str, name: str, country: str, role: PartyRole, *dpf: str) -> Party:
    certifications = tuple(
        Certification(scheme=s, status=CertificationStatus.ACTIVE, as_of=date(2025, 9, 1))
        for s in dpf
    )
    return Party(entity_id=entity, name=name, role=role, country=country,
                 certifications=certifications)  # fmt: skip


ACME_DE = _party("acme-gmbh", "ACME GmbH", "DE", PartyRole.CONTROLLER)
ACME_FR = _party("acme-sas", "ACME SAS", "FR", PartyRole.CONTROLLER)
ACME_IE = _party("acme-ie", "ACME Ireland Ltd", "IE", PartyRole.CONTROLLER)
ACME_UK = _party("acme-uk", "ACME UK Ltd", "GB", PartyRole.CONTROLLER)
ACME_IN = _party("acme-in", "ACME India Pvt Ltd", "IN", PartyRole.CONTROLLER)
ACME_CN = _party("acme-cn", "ACME (Beijing) Co", "CN", PartyRole.CONTROLLER)
ACME_RU = _party("acme-ru", "ACME Rus LLC", "RU", PartyRole.CONTROLLER)
ACME_JP = _party("acme-kk", "ACME KK", "JP", PartyRole.PROCESSOR)
ACME_JP_CONTROLLER = _party("acme-kk", "ACME KK", "JP", PartyRole.CONTROLLER)
ACME_SG = _party("acme-sg", "ACME Singapore Pte", "SG", PartyRole.PROCESSOR)
CLOUDCO_US = _party("cloudco", "CloudCo Inc", "US", PartyRole.PROCESSOR, "EU-US-DPF")
LABELS_US = _party("labelworks", "LabelWorks Inc", "US", PartyRole.PROCESSOR)


@dataclass(frozen=True)
class Step:
    """One thing that happens: ``team`` emits ``model`` with ``body`` at ``minute`` past 08:00.
    ``tamper``: fields a compromised relay rewrites in the emitted event before anyone reads it
    (the hash and signature stay as the producer made them)."""

    minute: int
    team: Team
    model: type[Event]
    body: dict[str, Any]
    caption: str
    expect: str = "lawful"
    tamper: dict[str, Any] = field(default_factory=dict)


def _dataset(  # noqa: PLR0917 - one row of the story's table
    asset: str, classification: Classification, where: Location, owner: str,
    subjects: tuple[str, ...], purposes: tuple[str, ...], **more: Any,
) -> dict[str, Any]:  # fmt: skip
    return {"asset_id": asset, "asset_kind": AssetKind.DATASET, "name": asset.removeprefix("ds:"),
            "owner": owner, "classification": classification, "location": where,
            "subject_jurisdictions": subjects, "collection_purposes": purposes, **more}  # fmt: skip


def _copy(  # noqa: PLR0917 - one row of the story's table
    asset: str, target: str, source: Location, destination: Location, subjects: int,
    exporter: Party, importer: Party, purpose: str, mechanism: TransferMechanism | None = None,
) -> dict[str, Any]:  # fmt: skip
    body = {"asset_id": asset, "target_asset_id": target, "operation": MovementOperation.COPY,
            "source": source, "destination": destination, "records": subjects,
            "bytes": subjects * 420,
            "distinct_subjects": subjects, "purpose": purpose, "exporter": exporter,
            "importer": importer}  # fmt: skip
    return body | ({"mechanism": mechanism} if mechanism else {})


def _mechanism(kind: MechanismKind, mechanism_id: str, **more: Any) -> TransferMechanism:
    return TransferMechanism(kind=kind, mechanism_id=mechanism_id, **more)


def declarations() -> list[Step]:
    d, cls = AssetDeclared, Classification
    return [
        Step(0, EU_DATA, d, _dataset("ds:customers", cls.PERSONAL, FRANKFURT, "crm-team",
             ("DE", "FR"), ("service", "churn-analytics"), origin_jurisdictions=("EEA",),
             residency=("DE",)), "customers (personal, pinned to DE) in Frankfurt"),
        Step(1, EU_DATA, d, _dataset("ds:claims", cls.SPECIAL_CATEGORY, PARIS, "claims-team",
             ("FR",), ("claims-handling",), origin_jurisdictions=("EEA",)),
             "health claims (special category) in Paris"),
        Step(2, EU_DATA, d, _dataset("ds:marketing-eu", cls.PERSONAL, DUBLIN, "growth-team",
             ("IE", "DE", "FR"), ("marketing",), origin_jurisdictions=("EEA",)),
             "marketing audience (personal) in Dublin"),
        Step(3, UK_ANALYTICS, d, _dataset("ds:uk-patients", cls.PERSONAL, LONDON, "uk-care",
             ("GB",), ("care-analytics",), origin_jurisdictions=("GB",)),
             "patient panel (personal) in London"),
        Step(4, IN_PAYMENTS, d, _dataset("ds:upi-payments", cls.PAYMENT, MUMBAI, "payments",
             ("IN",), ("payments",), origin_jurisdictions=("IN",)),
             "UPI payment records (payment-system data) in Mumbai"),
        Step(5, CN_COMMERCE, d, _dataset("ds:cn-orders", cls.PERSONAL, BEIJING, "cn-shop",
             ("CN",), ("fulfilment",), origin_jurisdictions=("CN",)),
             "shop orders (personal) in Beijing"),
        Step(6, CN_COMMERCE, d, _dataset("ds:cn-logistics", cls.CN_IMPORTANT, BEIJING,
             "cn-logistics", ("CN",), ("fulfilment",), origin_jurisdictions=("CN",)),
             "logistics network (CN important data) in Beijing"),
        Step(7, RU_SUBSCRIPTIONS, d, _dataset("ds:ru-subscribers", cls.PERSONAL, MOSCOW,
             "ru-media", ("RU",), ("subscriptions",), origin_jurisdictions=("RU",),
             subject_citizenships=("RU",)), "subscribers (Russian citizens) stored in Moscow"),
        Step(8, RU_SUBSCRIPTIONS, d, _dataset("ds:ru-billing", cls.PERSONAL, FRANKFURT,
             "ru-media", ("RU",), ("billing",), origin_jurisdictions=("RU",),
             subject_citizenships=("RU",)), "billing (Russian citizens), primary store Frankfurt",
             "RU-LOCAL"),
        Step(9, JP_LOYALTY, d, _dataset("ds:jp-members", cls.PERSONAL, TOKYO, "jp-loyalty",
             ("JP",), ("loyalty",), origin_jurisdictions=("JP",)),
             "loyalty members (personal) in Tokyo"),
    ]  # fmt: skip


def movements() -> list[Step]:
    m, mk = DataMovement, MechanismKind
    scc = _mechanism(mk.SCC, "scc-2025-claims", module="c2p", tia_review_date=date(2026, 9, 30))
    idta = _mechanism(mk.SCC, "idta-2025-04", module="idta", tia_review_date=date(2026, 12, 31))
    return [
        Step(15, EU_DATA, m, _copy("ds:marketing-eu", "ds:marketing-uk", DUBLIN, LONDON, 40_000,
             ACME_IE, ACME_UK, "marketing"), "EU -> UK (adequacy)"),
        Step(16, EU_DATA, m, _copy("ds:marketing-eu", "ds:marketing-jp", DUBLIN, TOKYO, 25_000,
             ACME_IE, ACME_JP, "marketing"), "EU -> JP (adequacy, private sector)", "EU-ADEQ"),
        Step(17, EU_DATA, m, _copy("ds:marketing-eu", "ds:marketing-us", DUBLIN, VIRGINIA,
             40_000, ACME_IE, CLOUDCO_US, "marketing"), "EU -> US (DPF-certified importer)"),
        Step(18, EU_DATA, m, _copy("ds:claims", "ds:claims-us", PARIS, VIRGINIA, 8_000, ACME_FR,
             LABELS_US, "claims-handling", scc),
             "EU -> US health claims on SCCs + TIA, no supplementary measures", "EU-ART9"),
        Step(19, EU_DATA, m, _copy("ds:claims", "ds:claims-in", PARIS, MUMBAI, 8_000, ACME_FR,
             ACME_IN, "claims-handling"), "EU -> IN health claims, no mechanism", "EU-3RD"),
        Step(20, EU_DATA, m, _copy("ds:customers", "ds:customers-ie", FRANKFURT, DUBLIN, 120_000,
             ACME_DE, ACME_IE, "service"), "DE -> IE customers (inside the EEA, pinned to DE)",
             "RES-PIN"),
        Step(22, UK_ANALYTICS, m, _copy("ds:uk-patients", "ds:uk-patients-de", LONDON, FRANKFURT,
             9_000, ACME_UK, ACME_DE, "care-analytics"), "UK -> DE (UK adequacy)"),
        Step(23, UK_ANALYTICS, m, _copy("ds:uk-patients", "ds:uk-patients-in", LONDON, MUMBAI,
             9_000, ACME_UK, ACME_IN, "care-analytics", idta), "UK -> IN (IDTA with a TRA)"),
        Step(24, UK_ANALYTICS, m, _copy("ds:uk-patients", "ds:uk-patients-us", LONDON, VIRGINIA,
             9_000, ACME_UK, LABELS_US, "care-analytics"),
             "UK -> US, importer not on the UK-US data bridge", "UK-US"),
        Step(26, IN_PAYMENTS, m, _copy("ds:upi-payments", "ds:upi-payments-hyd", MUMBAI,
             HYDERABAD, 500_000, ACME_IN, ACME_IN, "payments"), "IN -> IN (Hyderabad backup)"),
        Step(27, IN_PAYMENTS, m, _copy("ds:upi-payments", "ds:upi-payments-sg", MUMBAI,
             SINGAPORE, 500_000, ACME_IN, ACME_SG, "payments"),
             "IN -> SG payment data", "IN-PAY"),
        Step(28, IN_PAYMENTS, m, _copy("ds:upi-payments", "ds:upi-payments-sg2", MUMBAI,
             SINGAPORE, 250_000, ACME_IN, ACME_SG, "payments"),
             "IN -> SG payment data, rewritten in transit to read 'Hyderabad'", "TAMPERED",
             tamper={"destination": HYDERABAD}),
        Step(30, CN_COMMERCE, m, _copy("ds:cn-orders", "ds:cn-orders-jp", BEIJING, TOKYO,
             150_000, ACME_CN, ACME_JP, "fulfilment"),
             "CN -> JP orders of 150,000 people, no standard contract filed", "CN-CONTRACT"),
        Step(31, CN_COMMERCE, m, _copy("ds:cn-logistics", "ds:cn-logistics-de", BEIJING,
             FRANKFURT, 2_000, ACME_CN, ACME_DE, "fulfilment"),
             "CN -> DE important data, no CAC security assessment", "CN-ASSESS"),
        Step(33, RU_SUBSCRIPTIONS, m, _copy("ds:ru-subscribers", "ds:ru-subscribers-de", MOSCOW,
             FRANKFURT, 30_000, ACME_RU, ACME_DE, "subscriptions",
             _mechanism(mk.RU_NOTIFICATION, "rkn-2025-0117")),
             "RU -> DE (Roskomnadzor notified)"),
        Step(34, RU_SUBSCRIPTIONS, m, _copy("ds:ru-subscribers", "ds:ru-subscribers-us", MOSCOW,
             VIRGINIA, 30_000, ACME_RU, LABELS_US, "subscriptions"),
             "RU -> US, no Roskomnadzor notification", "RU-NOTIFY"),
        Step(36, JP_LOYALTY, m, _copy("ds:jp-members", "ds:jp-members-de", TOKYO, FRANKFURT,
             60_000, ACME_JP_CONTROLLER, ACME_DE, "loyalty"), "JP -> DE (APPI: EEA designated)"),
        Step(37, JP_LOYALTY, m, _copy("ds:jp-members", "ds:jp-members-us", TOKYO, VIRGINIA,
             60_000, ACME_JP_CONTROLLER, LABELS_US, "loyalty"),
             "JP -> US, no consent or equivalent measures", "JP-XFER"),
    ]  # fmt: skip


def data_steps() -> list[Step]:
    """Declarations, then movements, in time order."""
    return sorted([*declarations(), *movements()], key=lambda s: s.minute)
