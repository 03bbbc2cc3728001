# cvprep image, for the web process and for `cvprep worker` alike (compose.yaml runs both).
# CPU by default; `--build-arg BASE=cuda` builds on an NVIDIA CUDA runtime.
# `--build-arg TORCH_INDEX_URL=...` points pip at a torch wheel index of your choice (for
# example PyTorch's CPU-only index, which makes the CPU image several GB smaller).
ARG BASE=cpu

FROM node:20-slim AS frontend
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev
RUN mkdir -p static/vendor/swagger-ui \
 && cp node_modules/htmx.org/dist/htmx.min.js static/vendor/ \
 && cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chartjs-chart-matrix/dist/chartjs-chart-matrix.min.js static/vendor/ \
 && cp node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/swagger-ui-bundle.js static/vendor/swagger-ui/

FROM python:3.11-slim AS base-cpu

FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04 AS base-cuda
# Ubuntu's python3 of this release, with its security updates: not pinned to one build.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /usr/bin/python3 /usr/local/bin/python

# One of the two stages above, not an image from a registry.
# hadolint ignore=DL3006
FROM base-${BASE}
ARG TORCH_INDEX_URL=""
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DATA_DIR=/data VIRTUAL_ENV=/opt/venv
ENV PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
# Editable, so the app finds templates/, static/ and questions/ beside it in /app.
RUN pip install --no-cache-dir ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -e .
COPY questions ./questions
COPY templates ./templates
COPY static ./static
COPY --from=frontend /src/static/vendor ./static/vendor
RUN useradd --create-home --uid 10001 cvprep && mkdir -p /data && chown cvprep /data
USER 10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["cvprep", "serve", "--host", "0.0.0.0", "--port", "8000"]
