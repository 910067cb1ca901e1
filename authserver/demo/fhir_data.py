"""Synthetic FHIR R4 data for the demo FHIR server: three patients, their observations
(laboratory and vital-signs; for p1 also one ``exam``, a category outside US Core's),
conditions (problem-list-item and encounter-diagnosis), encounters, and one practitioner.
Made up; no real person.

Patient ids: ``p1`` (Example, Alice), ``p2`` (Sample, Bob), ``p3`` (Test, Carol);
Practitioner ``pr1`` (Smith, Jordan).
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PATIENTS", "PRACTITIONERS", "RESOURCE_TYPES", "resources"]

OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

#: id -> (family, given, gender, birthDate)
PATIENTS = {
    "p1": ("Example", "Alice", "female", "1984-03-12"),
    "p2": ("Sample", "Bob", "male", "1971-11-02"),
    "p3": ("Test", "Carol", "female", "1999-07-23"),
}
PRACTITIONERS = {"pr1": ("Smith", "Jordan")}

#: (suffix, category, LOINC code, display, value, unit, per-patient offsets); a patient
#: without an offset has no such observation.
_OBSERVATIONS = (
    ("glucose", "laboratory", "2339-0", "Glucose [Mass/volume] in Blood", 98.0, "mg/dL",
     {"p1": 0, "p2": 34, "p3": -12}),
    ("hba1c", "laboratory", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", 5.4, "%",
     {"p1": 0, "p2": 1.9, "p3": -0.3}),
    ("heart-rate", "vital-signs", "8867-4", "Heart rate", 72.0, "/min",
     {"p1": 0, "p2": 9, "p3": -4}),
    ("weight", "vital-signs", "29463-7", "Body weight", 64.0, "kg",
     {"p1": 0, "p2": 22.5, "p3": -6.2}),
    ("waist", "exam", "8280-0", "Waist Circumference at umbilicus by Tape measure", 78.0,
     "cm", {"p1": 0}),
)
#: patient -> (code, display, category, onset)
_CONDITIONS = {
    "p1": (("195967001", "Asthma", "problem-list-item", "2009-05-01"),
           ("10509002", "Acute bronchitis", "encounter-diagnosis", "2026-01-14")),
    "p2": (("44054006", "Type 2 diabetes mellitus", "problem-list-item", "2015-09-20"),
           ("38341003", "Hypertensive disorder", "problem-list-item", "2018-02-02")),
    "p3": (("35489007", "Depressive disorder", "problem-list-item", "2021-10-10"),
           ("68566005", "Urinary tract infection", "encounter-diagnosis", "2026-02-03")),
}
_ENCOUNTER_DATES = {"p1": "2026-01-14", "p2": "2026-01-20", "p3": "2026-02-03"}

RESOURCE_TYPES = ("Patient", "Practitioner", "Observation", "Condition", "Encounter")


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    c = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def _patient(pid: str) -> dict[str, Any]:
    family, given, gender, born = PATIENTS[pid]
    return {"resourceType": "Patient", "id": pid, "active": True,
            "name": [{"use": "official", "family": family, "given": [given],
                      "text": f"{given} {family}"}],
            "gender": gender, "birthDate": born,
            "generalPractitioner": [{"reference": "Practitioner/pr1"}]}


def _practitioner(prid: str) -> dict[str, Any]:
    family, given = PRACTITIONERS[prid]
    return {"resourceType": "Practitioner", "id": prid, "active": True,
            "name": [{"family": family, "given": [given], "prefix": ["Dr"],
                      "text": f"Dr {given} {family}"}]}


def _encounter(pid: str) -> dict[str, Any]:
    day = _ENCOUNTER_DATES[pid]
    return {"resourceType": "Encounter", "id": f"enc-{pid}-1", "status": "finished",
            "class": _coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB",
                             "ambulatory"),
            "type": [{"coding": [_coding(SNOMED, "185349003", "Encounter for check up")]}],
            "subject": {"reference": f"Patient/{pid}"},
            "participant": [{"individual": {"reference": "Practitioner/pr1"}}],
            "period": {"start": f"{day}T09:00:00Z", "end": f"{day}T09:30:00Z"}}


def _observation(pid: str, spec: tuple) -> dict[str, Any]:
    suffix, category, code, display, value, unit, offsets = spec
    return {"resourceType": "Observation", "id": f"obs-{pid}-{suffix}", "status": "final",
            "category": [{"coding": [_coding(OBSERVATION_CATEGORY, category)]}],
            "code": {"coding": [_coding(LOINC, code, display)], "text": display},
            "subject": {"reference": f"Patient/{pid}"},
            "encounter": {"reference": f"Encounter/enc-{pid}-1"},
            "effectiveDateTime": f"{_ENCOUNTER_DATES[pid]}T09:10:00Z",
            "valueQuantity": {"value": round(value + offsets[pid], 1), "unit": unit,
                              "system": UCUM, "code": unit}}


def _condition(pid: str, index: int, spec: tuple) -> dict[str, Any]:
    code, display, category, onset = spec
    return {"resourceType": "Condition", "id": f"cond-{pid}-{index}",
            "clinicalStatus": {"coding": [_coding(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active")]},
            "verificationStatus": {"coding": [_coding(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed")]},
            "category": [{"coding": [_coding(CONDITION_CATEGORY, category)]}],
            "code": {"coding": [_coding(SNOMED, code, display)], "text": display},
            "subject": {"reference": f"Patient/{pid}"}, "onsetDateTime": onset}


def resources() -> dict[str, dict[str, dict[str, Any]]]:
    """A fresh copy of every resource: type -> id -> resource."""
    out: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in RESOURCE_TYPES}
    for prid in PRACTITIONERS:
        out["Practitioner"][prid] = _practitioner(prid)
    for pid in PATIENTS:
        out["Patient"][pid] = _patient(pid)
        enc = _encounter(pid)
        out["Encounter"][enc["id"]] = enc
        for spec in (s for s in _OBSERVATIONS if pid in s[-1]):
            obs = _observation(pid, spec)
            out["Observation"][obs["id"]] = obs
        for i, spec in enumerate(_CONDITIONS[pid], start=1):
            cond = _condition(pid, i, spec)
            out["Condition"][cond["id"]] = cond
    return copy.deepcopy(out)
