"""The patient registry the picker searches: a patient is found by id or by name and birth
date; unknown ids and input PostgreSQL would refuse are not found, never a 500.
"""

from __future__ import annotations

from sqlalchemy import (
    select,
)

from authserver.extensions import db
from authserver.models import (
    Patient,
)


def get_patient(patient_id: str) -> Patient | None:
    if not isinstance(patient_id, str) or not patient_id or len(patient_id) > 64 \
            or "\x00" in patient_id:  # PostgreSQL refuses NUL in text: unknown, not a 500
        return None
    return db.session.get(Patient, patient_id)


def search_patients(query: str = "", birth_date: str = "", limit: int = 50) -> list[Patient]:
    stmt = select(Patient)
    # PostgreSQL refuses NUL in text: drop it from a search rather than answer 500.
    query, birth_date = (query or "").replace("\x00", ""), (birth_date or "").replace("\x00", "")
    q = query.strip()
    if q:
        like = f"%{q.lower()}%"
        from sqlalchemy import func, or_

        stmt = stmt.where(or_(func.lower(Patient.family).like(like),
                              func.lower(Patient.given).like(like), Patient.id == q))
    if birth_date:
        stmt = stmt.where(Patient.birth_date == birth_date.strip())
    return list(db.session.scalars(stmt.order_by(Patient.family, Patient.given).limit(limit)))


def put_patient(patient_id: str, family: str, given: str, birth_date: str | None) -> Patient:
    """Add the patient, or update the one with this id."""
    row = db.session.get(Patient, patient_id) or Patient(id=patient_id)
    row.family, row.given, row.birth_date = family, given, birth_date
    db.session.add(row)
    return row
