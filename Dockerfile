# syntax=docker/dockerfile:1
# The receiver (server/), built from this checkout and run with production dependencies only.
# docker-compose.yml runs it as receiver-1 and receiver-2; see docs/deployment.md.
#   docker build -t tracking-crm/receiver .
#   docker run -p 3000:3000 -e DATABASE_URL=postgresql://… -v "$PWD/config/sites:/app/config/sites:ro" \
#     -e SITE_CONFIG=/app/config/sites tracking-crm/receiver

# The Node.js the receiver is tested on.
ARG NODE_VERSION=20.20.2

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
# The dependencies first, so that a change of the sources does not install them again. .npmrc
# keeps install scripts off, as on every machine the project builds on.
COPY package.json package-lock.json .npmrc ./
COPY server/package.json server/
COPY absent/ absent/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
# The receiver's dependencies are the server/ workspace's; the root package (the n8n nodes) has
# none of its own at run time.
COPY package.json package-lock.json .npmrc ./
COPY server/package.json server/
COPY absent/ absent/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
# What the receiver reads at run time: the build, the migrations it applies at start, the
# bundled workflows its embedded engine runs, the tracker it serves and the example site config.
COPY --from=build /src/dist/ dist/
COPY --from=build /src/tracker/dist/ tracker/dist/
COPY prisma/ prisma/
COPY workflows/ workflows/
COPY config/site.example.json config/
# Everything above stays root's and read-only to the receiver; only the embedded database's
# folder (used when DATABASE_URL is unset) is the node user's.
RUN mkdir -p .data && chown node:node .data

USER node
ENV HOST=0.0.0.0 \
	PORT=3000
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
	CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/health').then((answer) => process.exit(answer.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server/main.js"]
