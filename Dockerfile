# syntax=docker/dockerfile:1
#
# The Guildhall server image.
#
#   docker build -t guildhall:0.1.0 .
#   docker run --rm -p 8080:8080 -e GUILDHALL_DATABASE__URL=postgres://… guildhall:0.1.0
#
# The runtime image has no shell and runs as user 10001. It needs no writable directory
# when configured as the Helm chart does (compile cache on a volume, PostgreSQL):
#   guildhall --config /etc/guildhall/guildhall.toml serve
# Without a config file the defaults apply, which write SQLite and the compile cache under
# the working directory /var/lib/guildhall; mount a volume there to keep them.

# --- build ---------------------------------------------------------------------------------
FROM rust:1.95-bookworm AS build
WORKDIR /src
# rust-toolchain.toml pins the exact toolchain; rustup installs it if the image's differs.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p guildhall \
    && install -D -m 0755 target/release/guildhall /out/guildhall \
    && install -d -m 0755 /out/workdir

# --- run -----------------------------------------------------------------------------------
# glibc and libgcc for the binary, CA certificates and tzdata; no shell, no package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/guildhall /usr/local/bin/guildhall
COPY --from=build --chown=10001:10001 /out/workdir /var/lib/guildhall
USER 10001:10001
WORKDIR /var/lib/guildhall
EXPOSE 8080
# Liveness: GET /healthz; readiness: GET /readyz. SIGTERM drains for http.shutdown_grace_secs.
ENTRYPOINT ["/usr/local/bin/guildhall"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
