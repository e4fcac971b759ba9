# The code location's image, the one deploy/helm/values.yaml names: `dagster api grpc` serving mlcicd.definitions.
# Build: podman build -t mlcicd:0.1.0 .   (or docker build; mlcicd_tests/test_image.py builds it and checks it)
# Without Docker Hub: deploy/image/debian-python-base.sh, then --build-arg BASE=localhost/mlcicd-python:3.11-slim
# The project lives at /opt/mlcicd, installed in place, so its data/ (landing, accepted store, reports, the embedded
# MLflow store) is /opt/mlcicd/data: the volume the Helm chart mounts there.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/mlcicd

WORKDIR /opt/mlcicd
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin mlcicd

# The exact versions CI tests, first and alone: this layer is rebuilt only when the lock file changes.
COPY requirements.lock ./
RUN pip install -r requirements.lock

# Then the package (no dependencies: the lock file has them all).
COPY pyproject.toml README.md workspace.yaml dagster.yaml ./
COPY contracts ./contracts
COPY mlcicd ./mlcicd
RUN pip install --no-deps -e . \
    && mkdir -p data \
    && chown -R mlcicd:mlcicd data

USER mlcicd
EXPOSE 3030
HEALTHCHECK --interval=30s --timeout=10s CMD ["dagster", "api", "grpc-health-check", "--port", "3030"]
ENTRYPOINT ["dagster", "api", "grpc", "--host", "0.0.0.0", "--port", "3030"]
CMD ["--module-name", "mlcicd.definitions"]
