# tmux-relay in a container (issue 15; docs/deploy.md). Three stages: the
# page is built with Node, the relay with Cargo (a release build embeds
# web/dist, see crates/relay/build.rs), and the final image holds only the
# binary on a slim Debian. Untested here: the development machines have no
# Docker.
#
#   docker build -t tmux-relay .
#   docker run -p 8417:8417 -v tmux-relay:/var/lib/tmux-relay tmux-relay

# -- the page -------------------------------------------------------------
FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN node build.mjs

# -- the relay ------------------------------------------------------------
FROM rust:1-bookworm AS relay
WORKDIR /src
COPY . .
COPY --from=web /src/web/dist web/dist
RUN cargo build --release --locked -p tmux-relay \
 && cp target/release/tmux-relay /usr/local/bin/tmux-relay

# -- the image ------------------------------------------------------------
# The binary links glibc only: SQLite is built in, TLS is rustls.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --no-log-init \
      --home-dir /var/lib/tmux-relay --create-home tmux-relay
COPY --from=relay /usr/local/bin/tmux-relay /usr/local/bin/tmux-relay
USER tmux-relay
ENV TMUX_RELAY_LISTEN=0.0.0.0:8417 \
    TMUX_RELAY_DATA_DIR=/var/lib/tmux-relay \
    TMUX_RELAY_LOG_FORMAT=json
VOLUME /var/lib/tmux-relay
EXPOSE 8417
ENTRYPOINT ["tmux-relay"]
CMD ["serve"]
