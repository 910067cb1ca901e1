"""``authserver launch`` (EHR launch contexts, SMART App Launch:
https://build.fhir.org/ig/HL7/smart-app-launch/app-launch.html#launch-app-ehr-launch) and
``authserver patient`` (the patient registry the picker offers)."""

from __future__ import annotations

import json

import click

from authserver.cli._shared import CliError, emit, with_app

__all__ = ["launch", "patient"]


@click.group()
def launch() -> None:
    """EHR launch contexts."""


@launch.command("create")
@click.option("--patient", required=True)
@click.option("--encounter", default=None)
@click.option("--fhir-context", default=None, help="JSON array of SMART 2.2 fhirContext objects")
@click.option("--need-patient-banner", is_flag=True)
@click.option("--intent", default=None)
@click.option("--smart-style-url", default=None)
@click.option("--tenant", default=None)
@click.option("--user", "username", default=None, help="Only this user may use the launch.")
@click.option("--aud", default=None, help="FHIR base (default: the first configured)")
@click.option("--client", "client_id", default=None, help="Only this app may use the launch.")
@with_app
def launch_create(patient: str, encounter: str | None, fhir_context: str | None,
                  need_patient_banner: bool, intent: str | None, smart_style_url: str | None,
                  tenant: str | None, username: str | None, aud: str | None,
                  client_id: str | None) -> None:
    """Create an EHR launch context."""
    from authserver.services import launches

    ctx = None
    if fhir_context:
        try:
            ctx = json.loads(fhir_context)
        except ValueError:
            raise CliError("--fhir-context: not JSON") from None
    emit(launches.create_launch(patient=patient, encounter=encounter, fhir_context=ctx,
                             need_patient_banner=need_patient_banner, intent=intent,
                             smart_style_url=smart_style_url, tenant=tenant,
                             username=username, aud=aud, client_id=client_id))


@click.group()
def patient() -> None:
    """The patient registry the picker offers."""


@patient.command("add")
@click.argument("patient_id")
@click.option("--name", required=True, help='"Family, Given"')
@click.option("--birth-date", default=None)
@with_app
def patient_add(patient_id: str, name: str, birth_date: str | None) -> None:
    """Add (or update) a patient in the registry."""
    from authserver.services import admin_console

    emit(admin_console.add_patient(patient_id, name, birth_date))
