# syntax=docker/dockerfile:1
# Truthboard's image: the static truthboard binary on Debian slim, run as a non-root user.
# docker-compose.yml builds and runs it beside ClickHouse; on its own:
#   docker build -t truthboard .
#   docker run -p 127.0.0.1:8080:8080 -e TRUTHBOARD_CLICKHOUSE_ADDR=host:9000 truthboard
# Settings are TRUTHBOARD_* environment variables (`docker run truthboard help` lists them).

# The dashboards' ECharts, from npm with the lock file; copied into static/vendor/ for go:embed.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY static/package.json static/package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
COPY --from=web /web/node_modules/echarts/dist/echarts.min.js static/vendor/echarts.min.js
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/truthboard ./cmd/truthboard

FROM debian:bookworm-slim
# curl is the health check's probe.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/truthboard --create-home \
        --shell /usr/sbin/nologin truthboard \
    && install -d -o truthboard -g truthboard -m 0700 /var/lib/truthboard/data
COPY --from=build /out/truthboard /usr/local/bin/truthboard

USER truthboard
WORKDIR /var/lib/truthboard
# Listen on every interface of the container; the data folder keeps the generated ingest key
# and admin token and the spool of acknowledged events not yet in ClickHouse, so mount a volume
# there (docker-compose.yml does).
ENV TRUTHBOARD_LISTEN=0.0.0.0:8080 \
    TRUTHBOARD_DATA_DIR=/var/lib/truthboard/data
VOLUME /var/lib/truthboard/data
EXPOSE 8080
# Ready means the server can acknowledge events (/readyz: its spool has room); the port follows
# TRUTHBOARD_LISTEN.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null "http://127.0.0.1:${TRUTHBOARD_LISTEN##*:}/readyz" || exit 1
# truthboard stops cleanly on SIGTERM (docker stop) within TRUTHBOARD_SHUTDOWN_TIMEOUT (15 s,
# under docker's default 10 s grace: give it stop_grace_period 20s or lower the timeout); what
# it could not send to ClickHouse stays in the spool for the next start.
ENTRYPOINT ["truthboard"]
CMD ["serve"]
