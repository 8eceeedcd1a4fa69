"""The sovereignty detector: an event, the policy and a state mapping in, decisions out (pure).

State (any mutable mapping: a dict here, a faust table in the stream processor) holds, as JSON,
the constraints of every asset (``asset:<id>``) and model version (``model:<name>:<version>``)
and the counters of China's yearly export volumes and of Art. 49 derogations. Events are judged
by the law valid on their ``event_time`` (adequacy dates, mechanism validity).

China's volumes are counted per exporter per calendar year by adding each movement's
``distinct_subjects`` (or ``records`` when unknown): the same person moved twice is counted
twice, so the count is an upper bound — it errs towards asking for the stricter route.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from auditline.derived import Derived
from auditline.events import (
    AssetDeclared,
    DataMovement,
    Event,
    ModelDeployed,
    Prediction,
    PredictionBatch,
    RunStatus,
    TrainingRun,
)
from auditline.events.types import UNKNOWN_COUNTRY
from auditline.policy.constraints import Constraints, strictest
from auditline.policy.counters import Shards
from auditline.policy.decisions import Decision
from auditline.policy.declassify import inherit
from auditline.policy.model import Policy
from auditline.policy.transfer import Transfer, TransferRules

State = MutableMapping[str, Any]


class PolicyEngine:
    def __init__(self, policy: Policy, shards: Shards | None = None) -> None:
        """``shards``: the counters' shards when several writers share the state (the worker's
        input partitions, see ``policy/counters.py``); each ``evaluate`` names its own."""
        self.policy = policy
        self.transfers = TransferRules(policy, shards)
        # a state value read again (a dict state and the worker's tables return the same object
        # until it changes) is not parsed into Constraints again
        self._constraints = Derived(Constraints.from_json)

    def evaluate(self, event: Event, state: State, shard: str = "") -> list[Decision]:
        """The decisions on ``event``; ``shard``: the counters' shard this writer adds to."""
        if isinstance(event, AssetDeclared):
            return self._declared(event, state)
        if isinstance(event, DataMovement):
            return self._movement(event, state, shard)
        if isinstance(event, TrainingRun):
            return self._training(event, state, shard)
        if isinstance(event, ModelDeployed):
            return self._serving(
                event, event.model_name, event.model_version, state, "serving", shard=shard
            )
        if isinstance(event, Prediction | PredictionBatch):
            return self._prediction(event, state, shard)
        return []

    def _places(self, residency: tuple[str, ...]) -> frozenset[str]:
        """A residency pin's countries: a policy group (EEA ...) stands for its members."""
        return frozenset(
            country for place in residency for country in (self.policy.group(place) or {place})
        )

    # -- state --------------------------------------------------------------------------------

    def constraints(self, state: State, key: str) -> Constraints | None:
        raw = state.get(key)
        return None if raw is None else self._constraints.get(key, raw)

    def _put(self, state: State, key: str, value: Constraints) -> None:
        raw = value.to_json()
        state[key] = raw
        self._constraints.put(key, raw, value)

    # -- events -------------------------------------------------------------------------------

    def _declared(self, event: AssetDeclared, state: State) -> list[Decision]:
        eid = str(event.envelope.event_id)
        own = Constraints(
            classification=str(event.classification),
            origins=frozenset(event.origin_jurisdictions) | frozenset(event.subject_jurisdictions),
            citizenships=frozenset(event.subject_citizenships),
            pins=frozenset({self._places(event.residency)}) if event.residency else frozenset(),
            purposes=frozenset(event.collection_purposes),
            location=event.location.country,
            evidence=(eid,),
            via=(event.asset_id,),
        )
        sources = [self.constraints(state, f"asset:{parent}") for parent in event.derived_from]
        prior = self.constraints(state, f"asset:{event.asset_id}")
        own, out = inherit(
            event, own, [c for c in sources if c], prior, self.policy.rule.get("DECLASS")
        )
        self._put(state, f"asset:{event.asset_id}", own)
        rule = self.policy.rule.get("RU-LOCAL")
        if (
            rule
            and "RU" in own.citizenships
            and event.is_primary_store
            and event.location.country != "RU"
        ):
            out.append(
                Decision(
                    "deny",
                    rule.id,
                    rule.version,
                    rule.severity,
                    eid,
                    f"primary store of Russian citizens' personal data is in "
                    f"{event.location.country}, not Russia",
                    {"location": event.location.country},
                    (eid,),
                )
            )
        if not own.allowed_in(event.location.country):
            out += self.transfers.judge(
                Transfer(
                    eid, event.envelope.event_time.date(), event.location.country, own, "storage"
                ),
                state,
            )
        return out

    def _movement(self, event: DataMovement, state: State, shard: str) -> list[Decision]:
        eid = str(event.envelope.event_id)
        known = self.constraints(state, f"asset:{event.asset_id}")
        cls = str(event.classification) if event.classification else "unknown"
        base = known or Constraints(
            classification=cls,
            origins=frozenset(event.subject_jurisdictions),
            location=event.source.country,
            via=(event.asset_id,),
        )
        if event.classification is not None:
            base = Constraints(
                strictest(base.classification, cls),
                base.origins,
                base.citizenships,
                base.pins,
                base.purposes,
                base.location,
                base.evidence,
                base.via,
            )
        transfer = Transfer(
            eid,
            event.envelope.event_time.date(),
            event.destination.country,
            base,
            "movement",
            # an unknown source (ZZ: nothing said where) leaves the asset's known location to speak
            from_country="" if event.source.country == UNKNOWN_COUNTRY else event.source.country,
            mechanism=event.mechanism,
            exporter=event.exporter,
            importer=event.importer,
            sub_processors=event.sub_processors,
            onward=event.onward_of is not None,
            subjects=event.distinct_subjects
            if event.distinct_subjects is not None
            else event.records,
            purpose=event.purpose,
            evidence=(eid,),
            shard=shard,
        )
        decisions = self.transfers.judge(transfer, state)
        if event.target_asset_id:
            # the target holds what it held and what arrived: several inputs joined into one
            # output (OpenLineage derive movements) keep the constraints of each
            key = f"asset:{event.target_asset_id}"
            arrived = base.hop(event.target_asset_id, eid, event.destination.country)
            held = self.constraints(state, key)
            if event.destination.country == UNKNOWN_COUNTRY and held and held.location:
                arrived = base.hop(event.target_asset_id, eid, held.location)
            self._put(state, key, arrived if held is None else arrived.merge(held))
        return decisions

    def _training(self, event: TrainingRun, state: State, shard: str) -> list[Decision]:
        eid = str(event.envelope.event_id)
        day, where = event.envelope.event_time.date(), event.location.country
        decisions: list[Decision] = []
        merged: Constraints | None = None
        judged = f"run-judged:{event.run_id}"  # the training hop is judged once per run:
        judge = judged not in state and event.status != RunStatus.FAILED  # at start, or at the end
        if judge:  # for runs that only report completion
            state[judged] = True
        for source in event.inputs:
            inherited = self.constraints(state, f"asset:{source}")
            if inherited is None:
                continue
            if judge:
                hop = Transfer(
                    eid, day, where, inherited, "training", purpose=event.purpose,
                    evidence=(eid,), shard=shard,
                )  # fmt: skip
                decisions += self.transfers.judge(hop, state)
            merged = inherited if merged is None else merged.merge(inherited)
        if (
            event.status == RunStatus.COMPLETED
            and event.model_version
            and merged
            and self.policy.inherit_to_models
        ):
            node = f"model:{event.model_name}:{event.model_version}"
            self._put(state, node, merged.hop(node, eid, where))
        return decisions

    def _serving(
        self, event: Event, name: str, version: str, state: State, hop: str, *, shard: str
    ) -> list[Decision]:
        model = self.constraints(state, f"model:{name}:{version}")
        location = getattr(event, "location")  # noqa: B009 - ModelDeployed and predictions have it
        if model is None:
            return []
        eid = str(event.envelope.event_id)
        day = event.envelope.event_time.date()
        transfer = Transfer(
            eid, day, location.country, model, hop, evidence=(eid,), shard=shard
        )  # fmt: skip
        return self.transfers.judge(transfer, state)

    def _prediction(
        self, event: Prediction | PredictionBatch, state: State, shard: str
    ) -> list[Decision]:
        """Serving a constrained model, judged once per (model, serving country, day). Until
        the model's constraints are known (its training run not read yet) nothing is marked, so
        the first prediction after they are is judged. The predictions' data subjects are
        judged too (``_subjects``), whatever the model was trained on."""
        decisions = self._subjects(event, state, shard)
        day = event.envelope.event_time.date()
        key = f"served:{event.model_name}:{event.model_version}:{event.location.country}:{day}"
        if key in state or f"model:{event.model_name}:{event.model_version}" not in state:
            return decisions
        state[key] = True
        return decisions + self._serving(
            event, event.model_name, event.model_version, state, "prediction", shard=shard
        )

    def _subjects(
        self, event: Prediction | PredictionBatch, state: State, shard: str
    ) -> list[Decision]:
        """A prediction about an identifiable person is that person's personal data: serving a
        data subject of jurisdiction J from country C is a transfer from J to C, judged by the
        regime J's data falls under, once per (model version, J, C, day). The EEA's members
        are judged together (one hop for all of them an event brings), so a batch of EU
        residents raises one decision per rule, not one per member state. Off with the pack's
        ``judge_prediction_subjects: false``."""
        if not self.policy.judge_prediction_subjects:
            return []
        if isinstance(event, Prediction):
            subjects = {event.subject_jurisdiction}
        else:
            subjects = set(event.subject_jurisdictions)
        where, day = event.location.country, event.envelope.event_time.date()
        eid, model = str(event.envelope.event_id), f"model:{event.model_name}:{event.model_version}"
        groups: dict[str, set[str]] = {}
        for subject in sorted(s for s in subjects if s is not None and s != where):
            key = f"subject:{event.model_name}:{event.model_version}:{subject}:{where}:{day}"
            if key not in state:
                state[key] = True
                group = "EEA" if subject in self.transfers.eea or subject == "EEA" else subject
                groups.setdefault(group, set()).add(subject)
        decisions: list[Decision] = []
        for group, members in sorted(groups.items()):
            about = Constraints(
                "personal", frozenset(members | {group}), location=group, evidence=(eid,),
                via=(f"subjects:{','.join(sorted(members))}", model),
            )  # fmt: skip
            transfer = Transfer(
                eid, day, where, about, "prediction-subject", evidence=(eid,), shard=shard,
            )  # fmt: skip
            decisions += self.transfers.judge(transfer, state)
        return decisions
