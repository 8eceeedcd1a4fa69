"""Transfer rules of the regimes beyond the EU's, as data (pure).

UK GDPR, Switzerland's FADP, Saudi Arabia's PDPL, Japan's APPI, Korea's PIPA, Brazil's LGPD and
India's DPDP Act are entries of the pack's ``regimes`` (``auditline/policy/default.yaml``): the
data each covers, the destinations it recognises as adequate, the mechanisms it accepts as a
basis and from/until when, each fact with its source. One judgement serves them all, hop by hop
like the EU's: adequacy (whole, partial, or only for importers holding a certification such as
a DPF), else a basis valid on the event's day, else a deny that says what was missing. A regime
without ``basis_required`` (India) only denies destinations it restricts.

How a movement names its mechanism is ``TransferMechanism.kind`` (and ``module`` where a regime
tells variants apart, e.g. the UK's IDTA and Addendum): see docs/policy.md, "More regimes".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from auditline.events import MechanismKind, Party, TransferMechanism
from auditline.policy.model import REGIME_RULES, Basis, Policy, Recognition, Regime

if TYPE_CHECKING:
    from auditline.policy.transfer import Transfer

Emit = Callable[..., None]
NO_MECHANISM = {MechanismKind.UNKNOWN, MechanismKind.NONE}


def certified(importer: Party | None, scheme: str, day: date) -> bool:
    """The importer held ``scheme`` (a DPF) on ``day``: active, checked within the last year."""
    return importer is not None and any(
        c.scheme == scheme
        and c.status == "active"
        and c.as_of <= day
        and (c.valid_until is None or day <= c.valid_until)
        and (day - c.as_of).days <= 366
        for c in importer.certifications
    )


class RegimeRules:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.groups = {name: policy.group(name) for name in policy.groups}
        # per regime: its countries, and every name its data may carry as an origin
        self.home = {key: self._countries(r.covers) for key, r in policy.regimes.items()}
        self.names = {key: self.home[key] | set(r.covers) for key, r in policy.regimes.items()}

    def _countries(self, names: tuple[str, ...]) -> frozenset[str]:
        return frozenset(c for name in names for c in (self.groups.get(name) or {name}))

    def _in(self, country: str, name: str) -> bool:
        return country == name or country in self.groups.get(name, ())

    def judge(self, t: Transfer, emit: Emit) -> None:
        """Every regime covering ``t``'s data judges the hop (the caller has checked that the
        data is personal and crosses a border): data of its origins, or leaving its countries."""
        source = t.from_country or t.constraints.location
        for key, regime in self.policy.regimes.items():
            home = self.home[key]
            covered = bool(t.constraints.origins & self.names[key]) or source in home
            if covered and t.to_country not in home and t.day >= regime.in_force:
                self._judge(key, regime, t, emit)

    def _judge(self, key: str, regime: Regime, t: Transfer, emit: Emit) -> None:
        ids = REGIME_RULES[key]
        if not regime.basis_required:
            restricted = next(
                (r for r in regime.restricted if self._in(t.to_country, r.country)
                 and r.holds_on(t.day)), None,
            )  # fmt: skip
            if restricted is not None:
                emit(ids.transfer, "deny", f"{regime.name}: transfers to {t.to_country} are "
                     f"restricted ({restricted.reference})", regime=key)  # fmt: skip
            return
        adequacy = next(
            (a for a in regime.adequacy if self._in(t.to_country, a.country)
             and a.holds_on(t.day)), None,
        )  # fmt: skip
        if adequacy is not None and adequacy.scope == "whole":
            return
        if adequacy is not None and adequacy.scope != "dpf_certified":
            self._partial(key, regime, adequacy, t, emit)
            return
        if adequacy is not None and certified(t.importer, str(adequacy.certification), t.day):
            return
        basis, missing = self._basis(regime, t)
        if basis is not None:
            self._assessment(key, regime, basis, t, emit)
        elif adequacy is not None:
            emit(ids.certified, "deny", f"{regime.name}: personal data to {t.to_country} "
                 f"without the importer's active {adequacy.certification} certification on that "
                 f"day ({adequacy.reference}), and {missing}", regime=key)  # fmt: skip
        else:
            emit(ids.transfer, "deny", f"{regime.name}: personal data to {t.to_country} "
                 f"(no adequacy) and {missing}", regime=key)  # fmt: skip

    def _partial(
        self, key: str, regime: Regime, adequacy: Recognition, t: Transfer, emit: Emit
    ) -> None:
        importer = t.importer.entity_id if t.importer else "(not named)"
        emit(
            REGIME_RULES[key].partial,
            "allow_with_obligations",
            f"{regime.name}: adequacy for {t.to_country} covers only {adequacy.scope} "
            "importers: confirm the importer is in scope",
            (
                f"confirm and record that the importer {importer} falls within the "
                f"{adequacy.scope} scope of {adequacy.reference}",
            ),
            regime=key,
            scope=adequacy.scope,
        )

    def _basis(self, regime: Regime, t: Transfer) -> tuple[Basis | None, str]:
        """The basis ``t``'s mechanism gives under ``regime`` on its day, or what is missing."""
        mech = t.mechanism
        if mech is not None and mech.kind == MechanismKind.ADEQUACY:
            return None, "the movement claims adequacy, which this regime does not recognise here"
        if mech is None or mech.kind in NO_MECHANISM:
            return None, f"no transfer mechanism recorded ({_accepted(regime)})"
        if (mech.signed_on is not None and t.day < mech.signed_on) or (
            mech.valid_until is not None and t.day > mech.valid_until
        ):
            return None, f"the {_name(mech)} is not valid on {t.day.isoformat()}"
        module = (mech.module or "").lower()
        same = [b for b in regime.bases if b.kind == mech.kind
                and (b.modules is None or module in b.modules)]  # fmt: skip
        if not same:
            return None, f"the {_name(mech)} is not a transfer basis here ({_accepted(regime)})"
        for basis in same:
            if not _why_not(basis, mech, t.day):
                return basis, ""
        reasons = "; ".join(f"{_why_not(b, mech, t.day)} ({b.reference})" for b in same)
        return None, f"the {_name(mech)} is not a basis on {t.day.isoformat()}: {reasons}"

    def _assessment(self, key: str, regime: Regime, basis: Basis, t: Transfer, emit: Emit) -> None:
        review = t.mechanism.tia_review_date if t.mechanism else None
        if basis.assessment and (review is None or review < t.day):
            emit(
                REGIME_RULES[key].assessment,
                "alert",
                f"{regime.name}: the {_name(t.mechanism)} needs a transfer (risk) assessment "
                + (
                    f"whose review date ({review.isoformat()}) has passed: review it"
                    if review
                    else "and none is on record (no review date): carry one out and record it"
                )
                + f" ({basis.reference})",
                regime=key,
            )


def _why_not(basis: Basis, mech: TransferMechanism, day: date) -> str:
    """Why ``basis`` does not hold for ``mech`` on ``day`` ('' when it does)."""
    if day < basis.effective_from:
        return f"accepted only from {basis.effective_from.isoformat()}"
    if basis.valid_until is not None and day > basis.valid_until:
        return f"accepted only until {basis.valid_until.isoformat()}"
    if basis.signed_until is not None and (
        mech.signed_on is None or mech.signed_on > basis.signed_until
    ):
        signed = mech.signed_on.isoformat() if mech.signed_on else "an unrecorded day"
        return f"only if signed by {basis.signed_until.isoformat()} (signed {signed})"
    if basis.occasional and not mech.occasional:
        return "only for occasional transfers (mark it occasional)"
    return ""


def _name(mech: TransferMechanism | None) -> str:
    if mech is None:
        return "mechanism"
    return f"{mech.kind} ({mech.module})" if mech.module else str(mech.kind)


def _accepted(regime: Regime) -> str:
    kinds = dict.fromkeys(
        f"{b.kind}" + (f" (module {' | '.join(b.modules)})" if b.modules else "")
        for b in regime.bases
    )
    return "accepted: " + (", ".join(kinds) or "none")
