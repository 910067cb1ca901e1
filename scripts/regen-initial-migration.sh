#!/usr/bin/env bash
# Until the first release the schema is one initial migration: regenerate it from the
# models (after a model change) so that `authserver init` and the models agree.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -f migrations/versions/*.py
AUTHSERVER_INSTANCE_PATH="$tmp" AUTHSERVER_DATABASE_URL="sqlite:///$tmp/db.sqlite3" \
  .venv/bin/flask --app authserver.app:create_app db migrate -m "initial schema" --rev-id 0001 >/dev/null
echo "regenerated: $(ls migrations/versions/*.py)"
