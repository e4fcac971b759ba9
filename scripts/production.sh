#!/usr/bin/env bash
# The production profile on one machine: dagster-webserver and dagster-daemon against PostgreSQL, on 127.0.0.1.
#   scripts/production.sh init        create the two databases (Dagster's and MLflow's) if they are missing
#   scripts/production.sh webserver   the UI on 127.0.0.1:${MLCICD_WEB_PORT:-3000}
#   scripts/production.sh daemon      sensors, schedules and the run queue
#   scripts/production.sh mlflow      MLflow's tracking server with its basic-auth app, on 127.0.0.1:${MLCICD_MLFLOW_PORT:-5000}
#   scripts/production.sh accounts    the pipeline's MLflow account and its registered models (the only account that
#                                     may move their aliases); run once after `mlflow` is up
# Credentials come only from the environment:
#   MLCICD_DAGSTER_PG_URL            default postgresql+psycopg2://postgres@127.0.0.1:5432/mlcicd_dagster
#   MLCICD_MLFLOW_BACKEND_URI        the tracking server's store; default postgresql+psycopg2://postgres@127.0.0.1:5432/mlcicd_mlflow
#   MLCICD_MLFLOW_AUTH_DB_URI        the auth app's users and permissions; default sqlite:///data/mlflow/auth.db
#   MLCICD_MLFLOW_AUTH_CACHE_SECONDS how long a checked password is remembered per server worker (default 30)
#   MLFLOW_AUTH_ADMIN_PASSWORD       the auth app's admin (break-glass only; set at the server's first start)
#   MLFLOW_FLASK_SERVER_SECRET_KEY   the auth app's CSRF key
#   MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD   the pipeline's account, for webserver, daemon and `mlcicd`
#                                    (username default mlcicd-pipeline)
#   MLFLOW_TRACKING_URI              what the pipeline talks to; default the server above
# The auth app's config file is generated from these (data/mlflow/auth.ini, mode 0600); the repository holds none.
set -euo pipefail
cd "$(dirname "$0")/.."
export MLCICD_DAGSTER_PG_URL="${MLCICD_DAGSTER_PG_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/mlcicd_dagster}"
export MLCICD_MLFLOW_BACKEND_URI="${MLCICD_MLFLOW_BACKEND_URI:-postgresql+psycopg2://postgres@127.0.0.1:5432/mlcicd_mlflow}"
MLFLOW_PORT="${MLCICD_MLFLOW_PORT:-5000}"
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-http://127.0.0.1:$MLFLOW_PORT}"
export MLFLOW_TRACKING_USERNAME="${MLFLOW_TRACKING_USERNAME:-mlcicd-pipeline}"
export DAGSTER_HOME="$PWD/deploy/production"
BIN="$PWD/.venv/bin"
need() { for name in "$@"; do [ -n "${!name:-}" ] || { echo "$0 $1: set $name (from a secret)" >&2; exit 2; }; done; }

case "${1:-}" in
  init)
    $BIN/python - <<'PY'
import os
from mlcicd.production import ensure_database
for url in (os.environ["MLCICD_DAGSTER_PG_URL"], os.environ["MLCICD_MLFLOW_BACKEND_URI"]):
    print(ensure_database(url))
PY
    ;;
  webserver) exec $BIN/dagster-webserver -h 127.0.0.1 -p "${MLCICD_WEB_PORT:-3000}" -w workspace.yaml ;;
  daemon) exec $BIN/dagster-daemon run -w workspace.yaml ;;
  mlflow)
    need MLFLOW_AUTH_ADMIN_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY
    export MLFLOW_AUTH_CONFIG_PATH="${MLCICD_MLFLOW_AUTH_INI:-$PWD/data/mlflow/auth.ini}"
    $BIN/python -c "import sys; from mlcicd.production import write_auth_ini; write_auth_ini(sys.argv[1], sys.argv[2], int(sys.argv[3]))" \
      "$MLFLOW_AUTH_CONFIG_PATH" "${MLCICD_MLFLOW_AUTH_DB_URI:-sqlite:///$PWD/data/mlflow/auth.db}" "${MLCICD_MLFLOW_AUTH_CACHE_SECONDS:-30}"
    exec $BIN/mlflow server --app-name basic-auth --host 127.0.0.1 --port "$MLFLOW_PORT" --workers "${MLCICD_MLFLOW_WORKERS:-2}" \
      --backend-store-uri "$MLCICD_MLFLOW_BACKEND_URI" --artifacts-destination "${MLCICD_MLFLOW_ARTIFACTS:-$PWD/data/mlflow/artifacts}"
    ;;
  accounts)
    need MLFLOW_AUTH_ADMIN_PASSWORD MLFLOW_TRACKING_PASSWORD
    $BIN/python - <<'PY'
import os
from mlcicd.production import provision_pipeline
from mlcicd.project import Project

project = Project.load(os.environ.get("MLCICD_CONFIG"))
names = [project.model_name(tier) for tier in ("full", "ci")]
admin = ("admin", os.environ["MLFLOW_AUTH_ADMIN_PASSWORD"])
pipeline = (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"])
for line in provision_pipeline(os.environ["MLFLOW_TRACKING_URI"], admin, pipeline, names):
    print(line)
PY
    ;;
  *) echo "usage: $0 init|webserver|daemon|mlflow|accounts" >&2; exit 2 ;;
esac
