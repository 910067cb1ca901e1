"""Liveness and database reachability."""

from __future__ import annotations

from flask import Blueprint, jsonify

from authserver import store

bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    ok = store.database_reachable()
    resp = jsonify(status="ok" if ok else "unavailable", database="ok" if ok else "unreachable")
    resp.status_code = 200 if ok else 503
    resp.headers["Cache-Control"] = "no-store"
    return resp
