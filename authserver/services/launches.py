"""EHR launch contexts made by the operator (``authserver launch create``) and by an EHR
(``POST /launch``, :mod:`authserver.views.launch`): each is single use, lives
``LAUNCH_LIFETIME`` seconds and can be redeemed at /authorize only by the app it names.
Errors (:class:`~authserver.services.admin_console.AdminError`) name the parameter as the
JSON body spells it.

https://hl7.org/fhir/smart-app-launch/app-launch.html#launch-app-ehr-launch
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from authserver import audit, clock, identifiers, store
from authserver.oauth.smart_style import smart_style_url as default_style_url
from authserver.services.admin_console import AdminError
from authserver.smart.launch import LaunchError, validate_fhir_context

__all__ = ["create_launch"]

#: Longest ``intent`` and ``tenant``.
_MAX_LAUNCH_TEXT = 255


@store.transaction()
def create_launch(*, patient: str, encounter: str | None = None, fhir_context: Any = None,
                  need_patient_banner: bool = False, intent: str | None = None,
                  smart_style_url: str | None = None, tenant: str | None = None,
                  username: str | None = None, aud: str | None = None,
                  client_id: str | None = None, created_by: str | None = None
                  ) -> dict[str, Any]:
    """An EHR launch context, for the CLI and for ``POST /launch`` (``created_by``: the
    EHR's client id). Returns the ``launch`` value, its ``iss`` and ``expires_in``."""
    conf = current_app.config
    patient, encounter = _fhir_ids(patient, encounter)
    fhir_context = _checked_fhir_context(fhir_context)
    _check_display(intent, tenant, need_patient_banner, smart_style_url)
    aud = _checked_aud(aud)
    _check_target_app(client_id)
    user_id, dead = _launch_user(username, created_by)
    value = store.interaction.create_launch(
        conf["LAUNCH_LIFETIME"], client_id=client_id, user_id=user_id, aud=aud,
        consumed_at=clock.now() if dead else None,
        patient=patient, encounter=encounter, fhir_context=fhir_context, intent=intent,
        need_patient_banner=need_patient_banner,
        smart_style_url=smart_style_url or default_style_url(), tenant=tenant)
    audit.record("launch.created", client_id=created_by, user_id=user_id,
                 via="api" if created_by else "cli")
    return {"launch": value, "iss": aud, "expires_in": conf["LAUNCH_LIFETIME"]}


def _fhir_ids(patient: Any, encounter: Any) -> tuple[str, str | None]:
    """The normalised ``patient`` and ``encounter`` ids (FHIR R4 ``id``)."""
    patient = identifiers.fhir_id(patient)
    if patient is None:
        raise AdminError("'patient' must be a FHIR id ([A-Za-z0-9-.], at most 64)")
    if encounter is not None:
        encounter = identifiers.fhir_id(encounter)
        if encounter is None:
            raise AdminError("'encounter' must be a FHIR id ([A-Za-z0-9-.], at most 64)")
    return patient, encounter


def _checked_fhir_context(fhir_context: Any) -> list[dict[str, Any]] | None:
    try:
        return validate_fhir_context(fhir_context)
    except LaunchError as exc:
        raise AdminError(f"'fhirContext': {exc}") from None


def _check_display(intent: Any, tenant: Any, need_patient_banner: Any,
                   smart_style_url: Any) -> None:
    """``intent``, ``tenant``, ``need_patient_banner`` and ``smart_style_url``, which the
    app receives as they are."""
    for name, value in (("intent", intent), ("tenant", tenant)):
        if value is not None and (not isinstance(value, str) or not value
                                  or len(value) > _MAX_LAUNCH_TEXT):
            raise AdminError(f"'{name}' must be a string of 1 to {_MAX_LAUNCH_TEXT} characters")
    if not isinstance(need_patient_banner, bool):
        raise AdminError("'need_patient_banner' must be true or false")
    if smart_style_url is not None and not _is_absolute_url(smart_style_url):
        raise AdminError("'smart_style_url' must be an absolute http(s) URL")


def _checked_aud(aud: Any) -> str:
    """The FHIR server the launch is for (``iss``): one this server protects."""
    conf = current_app.config
    if aud is not None and not isinstance(aud, str):
        raise AdminError("'aud' must be one of AUTHSERVER_FHIR_BASE_URL")
    aud = (aud or conf["FHIR_BASE_URL"]).strip().rstrip("/")
    if aud not in conf["FHIR_BASE_URLS"]:
        raise AdminError("'aud' must be one of AUTHSERVER_FHIR_BASE_URL")
    return aud


def _check_target_app(client_id: Any) -> None:
    """The app that alone may redeem the launch, when one is named: an enabled app."""
    if client_id is not None:
        target = store.clients.find_client(client_id) if isinstance(client_id, str) else None
        if target is None or target.kind != "app":
            raise AdminError("'client_id' is not an enabled app of this server")


def _launch_user(username: Any, created_by: str | None) -> tuple[int | None, bool]:
    """(the launching user's id, whether the launch must be made already spent)."""
    if username is None:
        return None, False
    user = store.accounts.get_user_by_username(username) if isinstance(username, str) else None
    if user is None and created_by is None:
        raise AdminError("'user' is not a known user")  # the operator's CLI: say so
    if user is None:
        # POST /launch answers the same whether or not the user exists (no account
        # enumeration by an EHR): the launch is made, already spent, so nobody can use it.
        return None, True
    return user.id, False


def _is_absolute_url(value: Any) -> bool:
    if not isinstance(value, str) or len(value) > 512 or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
