"""The patient picker of a clinician's standalone launch (SMART App Launch 2.2,
https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#standalone-apps:
``launch/patient`` — "Need patient context at launch time")."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from authserver import store
from authserver.auth import session as auth
from authserver.services import authorize_flow as flow
from authserver.web import error_page

bp = Blueprint("picker", __name__)

#: At most this many patients are listed; more means "narrow your search".
SHOWN = 50


@bp.route("/authorize/patient", methods=["GET", "POST"])
def pick():
    rid = request.values.get("req", "")
    user = auth.current_user()
    if user is None:
        return redirect(url_for("login.login", next=f"/authorize/continue?req={rid}"), 303)
    if request.method == "POST":
        step = flow.choose_patient(rid, user, request.form.get("patient", ""))
        if step is not None:
            return error_page(step.title, step.message, step.status, app=step.app)
        return redirect(url_for("authorize.resume", req=rid), 303)
    refused = flow.picker_check(rid, user)  # the registry is shown to clinicians only
    if refused is not None:
        return error_page(refused.title, refused.message, refused.status,
                          app=refused.app)
    q, born = request.args.get("q", "")[:100], request.args.get("birth_date", "")[:10]
    patients = store.registry.search_patients(q, born, limit=SHOWN + 1)
    pending = store.interaction.get_pending(rid)
    client = store.clients.find_client(pending.client_id) if pending else None
    return render_template("picker.html", patients=patients[:SHOWN],
                           more=len(patients) > SHOWN, req=rid, q=q, birth_date=born,
                           searched=bool(q or born), client=client,
                           signed_in_as=user.name or user.username)
