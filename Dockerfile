# syntax=docker/dockerfile:1
# auditline's processes (worker, sink, alerts, OpenLineage endpoint, migrate, auditor commands):
# one image, `ENTRYPOINT ["auditline"]`, so a container's command is an auditline command
# (docker-compose.yml, docs/deploy.md). No secrets are baked in: settings come from the
# environment at run time, and .dockerignore keeps everything but the sources out of the context.
#
#   docker build -t auditline .
#   docker build -t auditline --build-arg AUDITLINE_EXTRAS=registry,store .   # a sink-only image

# ---- builder: the wheel, then a virtual environment with the extras the services need ---------
FROM python:3.11-slim AS builder

# registry: Confluent framing (Schema Registry); streams + drift: `auditline worker`; store:
# `auditline migrate|sink` and the auditor commands; alerts: `auditline alerts serve`;
# openlineage: `auditline openlineage serve`. Not onnx: no service of the stack serves a model.
ARG AUDITLINE_EXTRAS=registry,streams,store,alerts,openlineage,drift,console

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# a compiler for any dependency without a wheel for this platform; it stays in this stage
RUN apt-get update \
    && apt-get install --yes --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md ./
COPY auditline ./auditline
COPY streams ./streams
COPY sinks ./sinks
COPY schemas ./schemas

RUN pip wheel --no-deps --wheel-dir /dist . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install "$(ls /dist/auditline-*.whl)[${AUDITLINE_EXTRAS}]" \
    && /opt/venv/bin/auditline --help > /dev/null

# ---- runtime: the virtual environment on a slim Python, as a non-root user ----------------------
FROM python:3.11-slim AS runtime

LABEL org.opencontainers.image.title="auditline" \
      org.opencontainers.image.description="Audit and lineage streaming for AI platforms" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid, so volumes can be prepared for it and orchestrators can check
# runAsNonRoot. /var/lib/auditline holds the spools (and any embedded state): a volume.
RUN groupadd --system --gid 10001 auditline \
    && useradd --system --uid 10001 --gid auditline --create-home --home-dir /home/auditline \
        --shell /usr/sbin/nologin auditline \
    && install --directory --owner=auditline --group=auditline --mode=0750 /var/lib/auditline

COPY --from=builder /opt/venv /opt/venv

# XDG_DATA_HOME=/var/lib makes auditline's data directory (platformdirs) /var/lib/auditline:
# the default spool is /var/lib/auditline/spool (`auditline config` shows it).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_DATA_HOME=/var/lib

USER 10001:10001
WORKDIR /home/auditline
VOLUME ["/var/lib/auditline"]

ENTRYPOINT ["auditline"]
CMD ["--help"]
