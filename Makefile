# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   one end-to-end run on the embedded default (simulated data, SQLite Dagster, local MLflow)
#   make test   the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)

.PHONY: demo test ci-job train promote rollback simulate-if-empty ui mlflow-ui serve prod-init prod-webserver prod-daemon lock bench clean

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

demo: $(VENV)/.installed
	$(BIN)/mlcicd validate
	$(BIN)/mlcicd simulate
	$(MAKE) --no-print-directory train promote
	@echo; $(BIN)/mlcicd status

# A config with a typo stops here with mlcicd validate's one line (file, key, closest real key), not with the
# code location's traceback from `dagster job execute`.
CHECK_CONFIG = @$(BIN)/mlcicd validate > /dev/null

train: $(VENV)/.installed
	$(CHECK_CONFIG)
	$(BIN)/mlcicd train

promote: $(VENV)/.installed
	$(CHECK_CONFIG)
	$(BIN)/mlcicd promote

# make rollback MODEL=fraud                 back to the previous champion
# make rollback MODEL=fraud VERSION=3       back to version 3 (it must have passed its gates)
# make rollback MODEL=fraud VERSION=3 OVERRIDE=true REASON="..."   even if it never passed (recorded as an override)
rollback: $(VENV)/.installed
	$(BIN)/mlcicd rollback $(if $(MODEL),--model $(MODEL),) --to "$(VERSION)" --reason "$(REASON)" $(if $(filter true,$(OVERRIDE)),--override,)

simulate-if-empty: $(VENV)/.installed
	@if [ -z "$$(ls -A data/*/landing data/*/accepted 2>/dev/null)" ]; then $(BIN)/mlcicd simulate; else echo "data has landed; not simulating"; fi

test: $(VENV)/.installed
	$(BIN)/pytest -q

ci-job: $(VENV)/.installed
	$(CHECK_CONFIG)
	$(BIN)/dagster job execute -m mlcicd.definitions -j ci_job

ui: $(VENV)/.installed
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

serve: $(VENV)/.installed
	$(BIN)/mlcicd serve

# The production profile (deploy/README.md): PostgreSQL for Dagster and MLflow, the daemon for the loop.
prod-init: $(VENV)/.installed
	scripts/production.sh init
prod-webserver: $(VENV)/.installed
	scripts/production.sh webserver
prod-daemon: $(VENV)/.installed
	scripts/production.sh daemon

mlflow-ui: $(VENV)/.installed
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/data/mlflow/mlflow.db --host 127.0.0.1 --port 5000

# Every benchmark, each writing benchmarks/results/<name>.json (about 70 minutes on 2 cores: benchmarks/limits.py about 15 of them and its 10M training run 4, scale_out.py about 8, subsampled_bootstrap.py about 8; not part of the tests)
bench: $(VENV)/.installed
	$(BIN)/python benchmarks/skeleton.py
	$(BIN)/python benchmarks/gates.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/subsampled_bootstrap.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/loop.py
	$(BIN)/python benchmarks/pr_tier.py
	$(BIN)/python benchmarks/limits.py
	$(BIN)/python benchmarks/limits.py --sizes --train-sizes 10000000 --runs 1
	$(BIN)/python benchmarks/scale_out.py

# Regenerate the lock file after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/mlcicd-lock && $(PYTHON) -m venv /tmp/mlcicd-lock && /tmp/mlcicd-lock/bin/pip install --quiet .
	(echo "# Exact versions that CI and the quickstart install. Regenerate with 'make lock'."; \
	 /tmp/mlcicd-lock/bin/pip freeze | grep -v '^mlcicd') > requirements.lock

clean:
	rm -rf data/landing data/to_score data/accepted data/archive data/quarantine data/assets data/predictions data/reports data/audit data/alerts data/serving data/mlflow data/dagster
