# syntax=docker/dockerfile:1
# n8n's official image with this package installed where and how n8n's Community Nodes installer
# puts one: ~/.n8n/nodes/node_modules/n8n-nodes-tracking-crm (no dev, peer or optional
# dependencies), listed in ~/.n8n/nodes/package.json, so its node types are
# n8n-nodes-tracking-crm.<node>, as for any user who installs it. scripts/real-n8n.sh load-package
# does those steps; the tests load the package into a real n8n with the same command.
#
# Built from this checkout, so the nodes and the receivers always run the same version on one
# database schema. main, workers and the webhook processor all start from this image: every
# process has the nodes from its first second, with no install at start and no registry needed.
# docker-compose.yml builds it; see docs/deployment.md.

ARG NODE_VERSION=20.20.2
ARG N8N_VERSION=2.41.1

# The same steps as the receiver's build stage (Dockerfile), so the builder reuses its layers.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
COPY server/package.json server/
COPY absent/ absent/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

RUN npm pack --pack-destination /tmp \
	&& bash scripts/real-n8n.sh load-package /tmp/n8n-nodes-tracking-crm-*.tgz /out

FROM n8nio/n8n:${N8N_VERSION}
COPY --from=build --chown=node:node /out/.n8n/nodes /home/node/.n8n/nodes
