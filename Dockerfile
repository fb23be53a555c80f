# syntax=docker/dockerfile:1
# One image for both halves of Switchyard: the router (sidecar) and the operator.
#   switchyard-router    the OpenAI-compatible router (default command)
#   switchyard-operator  the kopf operator (also serves the sidecar-injection webhook)
#   switchyard           the command-line tool (compile, report, demo)
# Build: docker build -t switchyard:dev .
#
# PYTHON_IMAGE: the base of both stages. python:3.12-slim for the image that ships; `make image`
# on a machine that reaches no container registry (CI) passes a Debian base made from Debian's
# packages instead (image/debian-base.sh), so that CI builds and runs this same file.
ARG PYTHON_IMAGE=python:3.12-slim

# ---------------------------------------------------------------- build: a self-contained venv
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/switchyard
COPY pyproject.toml README.md ./
COPY router/ router/
COPY operator/ operator/
COPY simulator/ simulator/
COPY cli/ cli/
# Every dependency ships wheels for linux/amd64 and arm64: no compiler in either stage.
# Byte-compile here so the runtime stage works with a read-only root filesystem. pip (and the
# setuptools some venvs get) are only needed to install: the runtime image goes without them.
RUN /opt/switchyard/bin/pip install --no-compile ".[operator,tracing]" \
    && /opt/switchyard/bin/pip uninstall -q -y pip setuptools \
    && /opt/switchyard/bin/python -m compileall -q /opt/switchyard/lib

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="switchyard" \
      org.opencontainers.image.description="Kubernetes-native LLM gateway: router sidecar and operator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/switchyard-dev/switchyard"
ENV PATH=/opt/switchyard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A numeric, unprivileged user: Kubernetes can verify runAsNonRoot without a passwd lookup.
RUN groupadd --system --gid 10001 switchyard \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin switchyard
COPY --from=build /opt/switchyard /opt/switchyard
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080
# No HEALTHCHECK: Kubernetes probes (see helm/switchyard) check health.
CMD ["switchyard-router"]
