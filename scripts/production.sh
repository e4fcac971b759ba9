#!/usr/bin/env bash
# The production profile on one machine: dagster-webserver and dagster-daemon against PostgreSQL, on 127.0.0.1.
#   scripts/production.sh init        create the two databases (Dagster's and MLflow's) if they are missing
#   scripts/production.sh webserver   the UI on 127.0.0.1:${MLCICD_WEB_PORT:-3000}
#   scripts/production.sh daemon      sensors, schedules and the run queue
# Credentials come only from the environment (nothing is written to a file):
#   MLCICD_DAGSTER_PG_URL  default postgresql+psycopg2://postgres@127.0.0.1:5432/mlcicd_dagster
#   MLFLOW_TRACKING_URI    default postgresql+psycopg2://postgres@127.0.0.1:5432/mlcicd_mlflow
set -euo pipefail
cd "$(dirname "$0")/.."
export MLCICD_DAGSTER_PG_URL="${MLCICD_DAGSTER_PG_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/mlcicd_dagster}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-postgresql+psycopg2://postgres@127.0.0.1:5432/mlcicd_mlflow}"
export DAGSTER_HOME="$PWD/deploy/production"
BIN=.venv/bin

case "${1:-}" in
  init)
    $BIN/python - <<'PY'
import os
from mlcicd.production import ensure_database
for url in (os.environ["MLCICD_DAGSTER_PG_URL"], os.environ["MLFLOW_TRACKING_URI"]):
    print(ensure_database(url))
PY
    ;;
  webserver) exec $BIN/dagster-webserver -h 127.0.0.1 -p "${MLCICD_WEB_PORT:-3000}" -w workspace.yaml ;;
  daemon) exec $BIN/dagster-daemon run -w workspace.yaml ;;
  *) echo "usage: $0 init|webserver|daemon" >&2; exit 2 ;;
esac
