# The GardenOS router image: `docker build -t ghcr.io/gardenos/router:0.1.0 .`
# Small on purpose: Node 24 slim, compiled JavaScript and production dependencies only, non-root.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
# The registry's `node` dev dependency is not needed here: the image has Node 24.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
USER 10001
EXPOSE 8405
ENTRYPOINT ["node", "--max-semi-space-size=1", "dist/cli/main.js"]
CMD ["router", "--config", "/etc/gardenos/router.yml"]
