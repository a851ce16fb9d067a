# syntax=docker/dockerfile:1
# The worker image: likeness_worker (bridge, task DAG, Dramatiq actors, built-in engines).
# Built from the repository root:  docker build -f deploy/worker.Dockerfile .
# (deploy/compose.yaml does that with context "..").

# ---- build: the package and its dependencies into a virtual environment.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY worker/pyproject.toml worker/
COPY worker/likeness_worker worker/likeness_worker
RUN /opt/venv/bin/pip install ./worker

# ---- runtime: the tools the built-in engines run as subprocesses (ffmpeg, espeak-ng) and the
# shared libraries mediapipe/OpenCV load (libGL, glib). Non-root.
FROM python:3.11.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg espeak-ng libgl1 libglib2.0-0 tini \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
# The worker validates every message against the exported JSON Schema. Outside the repository
# it finds them through LIKENESS_CONTRACTS_DIR (it reads $LIKENESS_CONTRACTS_DIR/schema/*.json).
COPY packages/contracts/schema /opt/likeness/contracts/schema
# The comfyui engine's built-in workflows (found through LIKENESS_COMFYUI_WORKFLOWS_DIR).
COPY deploy/comfyui/workflows /opt/likeness/comfyui/workflows
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin likeness \
 && mkdir -p /data/objects /tmp/likeness-worker \
 && chown -R likeness:likeness /data /tmp/likeness-worker
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LIKENESS_CONTRACTS_DIR=/opt/likeness/contracts \
    LIKENESS_COMFYUI_WORKFLOWS_DIR=/opt/likeness/comfyui/workflows \
    WORKER_WORK_DIR=/tmp/likeness-worker
# Numeric (likeness, 1000): Kubernetes' runAsNonRoot can only check a numeric user.
USER 1000:1000
WORKDIR /home/likeness
EXPOSE 9101
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["likeness-worker"]
