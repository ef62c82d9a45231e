# syntax=docker/dockerfile:1
# The three images every overlay runs, one target each. Build from the
# workspace root:
#   docker build -f docker/services.Dockerfile --target app \
#     --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t docket-app .
# and `--target broadcaster` (docket-broadcaster), `--target cronjobs`
# (docket-cronjobs).
#
# One builder stage compiles all three binaries: they share most of their
# dependencies, so building them in one cargo invocation compiles each
# dependency once (with the features the three need together), and the
# builder's layers serve all three targets from the layer cache. Built one
# Dockerfile each, the same dependencies compiled three times over.
# Dependencies are compiled in their own layer (cargo-chef) so that a source
# change rebuilds only Docket's crates.
# SQLX_OFFLINE comes from .cargo/config.toml: queries are checked against the
# committed .sqlx/ data.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
# The recipe is the whole workspace: a recipe pruned to one binary
# (`prepare --bin`) carries a Cargo.lock that no longer matches it, so a
# locked cook is refused and an unlocked one resolves other versions.
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json \
    --bin todo-app --bin broadcaster --bin cronjobs
COPY . .
# Reported by GET /version next to the crate version.
ARG GIT_COMMIT=unknown
RUN GIT_COMMIT="${GIT_COMMIT}" cargo build --release --locked \
    --bin todo-app --bin broadcaster --bin cronjobs

# Distroless `cc`: glibc and libgcc for a Rust binary, CA certificates, no
# shell, no package manager; `nonroot` is uid 65532, as in the manifests.
FROM gcr.io/distroless/cc-debian12:nonroot AS app
COPY --from=builder /src/target/release/todo-app /usr/local/bin/todo-app
USER 65532:65532
EXPOSE 8080
ENV PORT=8080 LOG_FORMAT=json
# The binary's mimalloc no longer asks for transparent huge pages (`no_thp`,
# see Cargo.toml), but on a node with transparent_hugepage=always the kernel
# would still back its arena with them, a whole 2 MiB for each touched part.
# With this mimalloc turns them off for the process (PR_SET_THP_DISABLE).
ENV MIMALLOC_ALLOW_THP=0
ENTRYPOINT ["/usr/local/bin/todo-app"]

FROM gcr.io/distroless/cc-debian12:nonroot AS broadcaster
COPY --from=builder /src/target/release/broadcaster /usr/local/bin/broadcaster
USER 65532:65532
EXPOSE 8081
ENV PORT=8081 LOG_FORMAT=json
# As the app's: the broadcaster runs on mimalloc too.
ENV MIMALLOC_ALLOW_THP=0
ENTRYPOINT ["/usr/local/bin/broadcaster"]

# The cronjobs image (subcommands wikipedia-todo, listen, backup). Its runtime
# base is the official `postgres` image, not distroless. `cronjobs
# backup` runs `pg_dump`, which must be at least as new as the server's major
# version (the manifests and docker-compose run postgres:17). The official
# image is the one source of a pg_dump that always matches that server and is
# built for the same Debian (bookworm) as the builder, so the binary's glibc
# matches too. Debian's own postgresql-client is 15, too old for a 17 server.
# The image has a shell, but nothing here uses it: the entrypoint is the
# binary, run as the unprivileged uid 65532 like every Docket container.
FROM postgres:17.6-bookworm AS cronjobs
# A named unprivileged user for uid 65532, so that libpq and pg_dump can look
# up the current user; the server entrypoint of the base image is replaced.
RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=builder /src/target/release/cronjobs /usr/local/bin/cronjobs
USER 65532:65532
ENV LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/cronjobs"]
CMD ["--help"]
