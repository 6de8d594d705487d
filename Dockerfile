# syntax=docker/dockerfile:1
# One image for every fedmq role: `aggregator`, `worker`, `status`, `report` (the entrypoint is `fedmq`).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md* ./
# Every package pyproject.toml installs, one line each (tests/e2e/test_image.py holds the two
# lists equal, stages exactly these into a fresh environment and starts the services from it).
COPY schemas schemas
COPY training training
COPY broker broker
COPY privacy privacy
COPY secagg secagg
COPY runtime runtime
COPY tasks tasks
# torchtrain imports torch, which the image leaves out (GBs): a derived image that needs
# `--trainer torchtrain...` installs `.[torch]` on top.
COPY torchtrain torchtrain
COPY aggregator aggregator
COPY worker worker
COPY simulator simulator
COPY fedmq fedmq
# pyproject names README.md as the long description; build without it if it is not there.
RUN test -f README.md || echo "fedmq" > README.md; \
    pip install ".[report]" && rm -rf /src/build

# No secrets in the image: credentials arrive as AMQP_URL at run time.
RUN useradd --system --uid 10001 --create-home fedmq \
    && mkdir -p /var/lib/fedmq \
    && chown fedmq:fedmq /var/lib/fedmq
USER fedmq
WORKDIR /var/lib/fedmq

ENTRYPOINT ["fedmq"]
CMD ["--help"]
