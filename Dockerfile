# One image for the whole sandbox; the command picks the service:
#   docker run ... dtr-sandbox ehr | payer | smartapp
# docker-compose.yml runs all three. Build context: the repository root.

# --- build: the three services (cgo, for SQLite) and the healthcheck -------
# scripts/healthcheck is what docker-compose.yml's healthchecks run
# (`healthcheck https://localhost:<port>`: GET /healthz, trusting
# $SANDBOX_DATA_DIR/tls/ca.pem); every binary lands in /usr/local/bin.
FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=1 GOFLAGS=-trimpath
# go.work ties the modules together (dtrsandbox/shared, web, ehr, payer,
# smartapp, scripts); the service and scripts modules' go.mod files also
# replace dtrsandbox/shared and dtrsandbox/web with ../shared and ../web.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags="-s -w" -o /out/ \
      ./ehr/cmd/ehr ./payer/cmd/payer ./smartapp/cmd/smartapp ./scripts/healthcheck

# --- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin sandbox \
 && mkdir -p /data /app/payer \
 && chown sandbox:sandbox /data
COPY --from=build /out/ /usr/local/bin/
# The payer's default trusted-EHR registry. A relative PAYER_TRUSTED_EHRS is
# taken from the folder holding go.work, else (as here, where there is none)
# from the working directory; compose mounts its own.
COPY --from=build /src/payer/trusted-ehrs.json /app/payer/trusted-ehrs.json
WORKDIR /app
USER sandbox
# TLS CA and leaf certificates, keys, SQLite files. A new named volume is
# seeded from this directory, so it starts owned by the sandbox user.
ENV SANDBOX_DATA_DIR=/data
VOLUME /data
EXPOSE 8441 8442 8443
CMD ["ehr"]
