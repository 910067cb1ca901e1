"""/developer (register and see your apps) and /admin (users, apps, audit log)."""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, abort, redirect, render_template, request, url_for

from authserver.auth import session as auth
from authserver.i18n import said
from authserver.services import accounts, admin_console
from authserver.smart.roles import Role

bp = Blueprint("portal", __name__)


def _requires(*roles: Role):
    def deco(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            user = auth.current_user()
            if user is None:
                return redirect(url_for("login.login", next=request.path), 303)
            if user.role not in roles:
                abort(403)
            return view(user, *args, **kwargs)
        return wrapper
    return deco


@bp.route("/developer", methods=["GET", "POST"])
@_requires(Role.DEVELOPER, Role.ADMIN)
def developer(user):
    created, error = None, None
    if request.method == "POST":
        try:
            created = admin_console.register_portal_app(user, request.form.to_dict())
        except admin_console.AdminError as exc:
            error = said(exc)
    return render_template("developer.html", user=user, apps=admin_console.list_clients(user.id),
                           created=created, error=error, form=request.form), (
        400 if error else 200)


def render_console(user, status: int = 200, **extra):
    """The admin console page; ``extra`` carries error / created / invited."""
    from authserver.services import policies

    context = {"error": None, "created": None, "invited": None, **extra}
    return render_template("admin.html", user=user, users=admin_console.list_users(),
                           apps=admin_console.list_clients(), events=admin_console.recent_audit(),
                           invitations=accounts.pending(),
                           policies=policies.show_policy(), **context), status


@bp.get("/admin")
@_requires(Role.ADMIN)
def console(user):
    return render_console(user)


@bp.post("/admin/users")
@_requires(Role.ADMIN)
def create_user(user):
    f = request.form
    try:
        created = accounts.create_user(f.get("username", ""), f.get("role", ""),
                                       password=f.get("password") or None,
                                       fhir_user=f.get("fhir_user") or None,
                                       name=f.get("name") or None, email=f.get("email") or None)
    except admin_console.AdminError as exc:
        return render_console(user, 400, error=said(exc))
    return render_console(user, created=created)


@bp.post("/admin/apps")
@_requires(Role.ADMIN)
def app_state(user):
    admin_console.set_client_enabled(request.form.get("client_id", ""),
                                     request.form.get("action") == "enable", by=user.id)
    return redirect(url_for("portal.console"), 303)


@bp.post("/admin/apps/introspect")
@_requires(Role.ADMIN)
def app_introspect(user):
    try:
        admin_console.set_client_introspect(request.form.get("client_id", ""),
                                            request.form.get("action") == "allow", by=user.id)
    except admin_console.AdminError as exc:
        return render_console(user, 400, error=said(exc))
    return redirect(url_for("portal.console"), 303)


@bp.post("/admin/apps/pre-approved")
@_requires(Role.ADMIN)
def app_pre_approved(user):
    try:
        admin_console.set_client_pre_approved(request.form.get("client_id", ""),
                                              request.form.get("action") == "allow", by=user.id)
    except admin_console.AdminError as exc:
        return render_console(user, 400, error=said(exc))
    return redirect(url_for("portal.console"), 303)


@bp.post("/admin/user-state")
@_requires(Role.ADMIN)
def user_state(user):
    try:
        uid = int(request.form.get("user_id", ""))
    except ValueError:
        abort(400)
    admin_console.set_user_enabled(uid, request.form.get("action") == "enable", by=user.id)
    return redirect(url_for("portal.console"), 303)


@bp.post("/admin/policy")
@_requires(Role.ADMIN)
def policy(user):
    """Set or remove a role's or a user's scope ceiling."""
    from authserver.services import policies

    f = request.form
    who = {"role": f.get("role") or None, "username": f.get("username") or None}
    try:
        if f.get("action") == "unset":
            policies.unset_policy(**who, by=user.id)
        else:
            policies.set_policy(f.get("scope", ""), **who, by=user.id)
    except policies.PolicyError as exc:
        return render_console(user, 400, error=said(exc))
    return redirect(url_for("portal.console"), 303)
