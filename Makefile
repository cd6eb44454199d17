# Two commands on a fresh machine: `make run` (portal + worker + beat with demo data) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
DEV_ENV := PORTAL_MODE=development SITE_URL=http://127.0.0.1:$(PORT) PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/var/prometheus

.PHONY: install run test test-browser lint format bench clean

install: $(STAMP) .env

# A developer checkout runs `manage.py ...` as printed in the README: development mode and a signing key of its
# own, in a git-ignored .env the settings read (the environment wins; tests and CI never read it). Written once.
.env:
	@umask 077 && $(PYTHON) -c 'import secrets; print("# Written by make install for this checkout (git-ignored). Deployments set real settings.\nPORTAL_MODE=development\nSECRET_KEY=" + secrets.token_urlsafe(50))' > $@
	@echo "make: wrote .env (PORTAL_MODE=development and a new SECRET_KEY)"

# Reinstall only when the dependency files change. Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE
# set (as on our CI machines) every process would otherwise compile Django again (django.setup: 2.1 s instead of 0.8).
$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.9,<1"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements-dev.lock
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q -j 0 portal catalog approvals scaffolder runtime agents_api bench >/dev/null
	@touch $(STAMP)

run: install
	@mkdir -p var && rm -rf var/prometheus && mkdir -p var/prometheus
	@$(DEV_ENV) $(BIN)/python manage.py migrate --noinput -v0
	@$(DEV_ENV) $(BIN)/python manage.py seed_demo
	@echo ""
	@echo "  Agent Portal: http://127.0.0.1:$(PORT)/   (Ctrl-C stops web, worker and beat)"
	@echo ""
	@$(DEV_ENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/honcho --no-prefix -f Procfile.dev start -p $(PORT) || true

test: install
	PORTAL_MODE=test $(BIN)/pytest $(PYTEST_ARGS)

test-browser: install
	PORTAL_MODE=test $(BIN)/pytest -m browser $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PORTAL_MODE=test $(BIN)/lint-imports
	PORTAL_MODE=test $(BIN)/mypy
	PORTAL_MODE=test $(BIN)/pytest -q -p no:randomly portal/tests/test_code_rules.py portal/tests/test_module_size.py

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	PORTAL_MODE=test $(BIN)/python -m bench

clean:
	rm -rf $(VENV) var
