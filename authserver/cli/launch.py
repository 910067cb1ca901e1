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
    """EHR launch contexts.

    \b
    Example:
      authserver launch create --patient p1 --encounter e1 --user drsmith \\
          --need-patient-banner
    """


@launch.command("create")
@click.option("--patient", required=True,
              help="The patient in context: an id of the patient registry.")
@click.option("--encounter", default=None, help="The encounter in context (a FHIR id).")
@click.option("--fhir-context", default=None,
              help="A JSON array of SMART 2.2 fhirContext objects.")
@click.option("--need-patient-banner", is_flag=True,
              help="Tell the app the EHR shows no patient banner (the app shows one).")
@click.option("--intent", default=None, help="SMART launch intent, e.g. reconcile-medications.")
@click.option("--smart-style-url", default=None,
              help="A style document URL  [default: this server's /smart-style.json]")
@click.option("--tenant", default=None, help="The EHR tenant, passed on to the app.")
@click.option("--user", "username", default=None, help="Only this user may use the launch.")
@click.option("--aud", default=None,
              help="The FHIR base the launch is for  [default: the first configured]")
@click.option("--client", "client_id", default=None, help="Only this app may use the launch.")
@with_app
def launch_create(patient: str, encounter: str | None, fhir_context: str | None,
                  need_patient_banner: bool, intent: str | None, smart_style_url: str | None,
                  tenant: str | None, username: str | None, aud: str | None,
                  client_id: str | None) -> None:
    """Create an EHR launch context (single use, for a patient of the registry)."""
    from authserver.services import launches, user_admin

    user_admin.check_patient_known(patient)
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
    """The patient registry the picker offers.

    \b
    Example:
      authserver patient add p1 --name "Doe, Jane" --birth-date 1980-02-03
    """


@patient.command("add")
@click.argument("patient_id")
@click.option("--name", required=True, help='The name as "Family, Given".')
@click.option("--birth-date", default=None, help="The birth date, YYYY-MM-DD.")
@with_app
def patient_add(patient_id: str, name: str, birth_date: str | None) -> None:
    """Add (or update) a patient in the registry."""
    from authserver.services import admin_console

    emit(admin_console.add_patient(patient_id, name, birth_date))
