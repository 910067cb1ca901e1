"""The patient registry the clinician's patient picker offers."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from authserver.extensions import db


class Patient(db.Model):
    __tablename__ = "patients"

    #: The FHIR Patient id.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    family: Mapped[str] = mapped_column(String(255), index=True)
    given: Mapped[str] = mapped_column(String(255))
    birth_date: Mapped[str | None] = mapped_column(String(10))

    @property
    def display_name(self) -> str:
        return f"{self.family}, {self.given}" if self.given else self.family
