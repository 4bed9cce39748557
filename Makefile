# KetaClinic. Two commands on a fresh machine (Python 3.11, make, git):
#   make demo   install, migrate an embedded SQLite database, load the demo clinic, serve :8000
#   make test   install and run every test (SQLite; set DATABASE_URL for PostgreSQL)
PY ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# Test processes (pytest-xdist): one per CPU; `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= auto
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install demo test test-fast lint bench chromium clean

$(UV):
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Installs exactly what uv.lock pins into .venv (using this machine's Python, never a download).
install: $(UV)
	$(UV) sync --frozen --quiet --python $(PY)

demo: install
	@mkdir -p var/static
	KETACLINIC_DEMO=1 $(BIN)/ketaclinic demo

# Browser tests drive Debian's Chromium; install it when missing (needs root, as on CI).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: install chromium
	KETACLINIC_TESTING=1 $(BIN)/pytest -p no:cacheprovider -n $(TEST_WORKERS) \
		--cov=ketaclinic/clinical --cov-branch --cov-report=term:skip-covered --cov-fail-under=95

# Everything but the browser tests, for a quick loop.
test-fast: install
	KETACLINIC_TESTING=1 $(BIN)/pytest -p no:cacheprovider -m "not browser" -x -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	KETACLINIC_TESTING=1 $(BIN)/mypy --strict ketaclinic/clinical
	KETACLINIC_TESTING=1 $(BIN)/mypy ketaclinic config
	$(BIN)/lint-imports
	KETACLINIC_TESTING=1 $(BIN)/ketaclinic makemigrations --check --dry-run
	DJANGO_SECRET_KEY=ci-$$(head -c 48 /dev/urandom | base64 | tr -d '/+=\n') \
		DJANGO_ALLOWED_HOSTS=clinic.example.org \
		$(BIN)/ketaclinic check --deploy --fail-level WARNING

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache .coverage
