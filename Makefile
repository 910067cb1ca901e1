# Two commands on a fresh clone: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-fast lint bench clean venv well-known translations

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml setup.py
	$(PIP) install --quiet -e '.[test,bench]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/authserver demo

test: $(STAMP)
	$(VENV)/bin/ruff check authserver tests bench
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -x -m "not e2e"

lint: $(STAMP)
	$(VENV)/bin/ruff check authserver tests bench

bench: $(STAMP)
	$(PY) bench/run.py
	$(PY) bench/bench_introspection.py

clean:
	rm -rf $(VENV) build dist *.egg-info instance

# Static discovery documents (default configuration) for serving behind a proxy; a test
# fails when they drift from what the server serves. jwks.json is per instance: not committed.
well-known: $(STAMP)
	tmp=$$(mktemp -d) && env -u AUTHSERVER_ISSUER -u AUTHSERVER_FHIR_BASE_URL \
	  AUTHSERVER_INSTANCE_PATH=$$tmp $(VENV)/bin/authserver export-well-known .well-known >/dev/null \
	  && rm -rf $$tmp

# The gettext catalogues (authserver/i18n.py): extract the marked strings, update every
# language's .po, compile the .mo files the server reads. Translate the new msgids in between.
translations: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k lazy_gettext --no-location --sort-output \
		--project authserver -o translations/messages.pot .
	$(VENV)/bin/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching
	$(VENV)/bin/pybabel compile -d translations
