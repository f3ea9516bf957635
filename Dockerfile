# syntax=docker/dockerfile:1
# Beacon server image. Build:  docker build --build-arg COMMIT=$(git rev-parse HEAD) -t beacon .
# Not built on the development machines (no container engine there): a test lints this file
# (packages/cli/test/packaging.test.ts); see docs/operations.md.

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: every dependency, compile, then drop the development ones ----
FROM ${NODE_IMAGE} AS build
# better-sqlite3 is native: its prebuilt binary is fetched at install, and compiled with these when none fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages/core/package.json packages/core/
COPY packages/server/package.json packages/server/
COPY packages/client/package.json packages/client/
COPY packages/proxy/package.json packages/proxy/
COPY packages/cli/package.json packages/cli/
COPY packages/ui/package.json packages/ui/
# No scripts yet: the root `prepare` builds, and the sources are not copied until the next layer.
RUN npm ci --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3
COPY packages ./packages
RUN npx tsc -b \
 && npm run build -w @beacon/ui \
 && npm prune --omit=dev --no-audit --no-fund

# ---- runtime: the built packages and their production dependencies, as a user of its own ----
FROM ${NODE_IMAGE}
ARG COMMIT=unknown
ENV NODE_ENV=production \
    BEACON_COMMIT=${COMMIT}
RUN groupadd --system beacon \
 && useradd --system --gid beacon --home-dir /var/lib/beacon --shell /usr/sbin/nologin beacon \
 && install -d -o beacon -g beacon -m 0750 /var/lib/beacon
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages/core/package.json packages/core/
COPY --from=build /app/packages/core/dist packages/core/dist
COPY --from=build /app/packages/server/package.json packages/server/
COPY --from=build /app/packages/server/dist packages/server/dist
COPY --from=build /app/packages/client/package.json packages/client/
COPY --from=build /app/packages/client/dist packages/client/dist
COPY --from=build /app/packages/proxy/package.json packages/proxy/
COPY --from=build /app/packages/proxy/dist packages/proxy/dist
COPY --from=build /app/packages/cli/package.json packages/cli/
COPY --from=build /app/packages/cli/dist packages/cli/dist
COPY --from=build /app/packages/cli/bin packages/cli/bin
COPY --from=build /app/packages/ui/package.json packages/ui/
COPY --from=build /app/packages/ui/dist packages/ui/dist
RUN ln -s /app/packages/cli/bin/beacon.js /usr/local/bin/beacon
USER beacon
VOLUME ["/var/lib/beacon"]
EXPOSE 8500 8600/udp 8600/tcp
# The slim image has no curl; Node's fetch asks the server itself.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8500/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# Node as PID 1: the server handles SIGTERM/SIGINT itself (graceful shutdown, docs/operations.md).
ENTRYPOINT ["beacon"]
# A container's ports are only reachable through 0.0.0.0, which Beacon refuses without
# --insecure-open while it has no access control (docs/security.md). ACLs will replace the flag;
# until then publish the ports only to hosts you trust (e.g. -p 127.0.0.1:8500:8500).
CMD ["server", "--data-dir", "/var/lib/beacon", "--http-addr", "0.0.0.0:8500", "--dns-addr", "0.0.0.0:8600", "--insecure-open"]
