# syntax=docker/dockerfile:1
# The `cronjobs` image (subcommands wikipedia-todo, listen, backup). Build from
# the workspace root:
#   docker build -f docker/cronjobs.Dockerfile -t docket-cronjobs .
#
# Runtime base: the official `postgres` image, not distroless. `cronjobs
# backup` runs `pg_dump`, which must be at least as new as the server's major
# version (the manifests and docker-compose run postgres:17). The official
# image is the one source of a pg_dump that always matches that server and is
# built for the same Debian (bookworm) as the builder, so the binary's glibc
# matches too. Debian's own postgresql-client is 15, too old for a 17 server.
# The image has a shell, but nothing here uses it: the entrypoint is the
# binary, run as the unprivileged uid 65532 like every Docket container.

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
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin cronjobs
COPY . .
ARG GIT_COMMIT=unknown
RUN GIT_COMMIT="${GIT_COMMIT}" cargo build --release --locked --bin cronjobs

FROM postgres:17.6-bookworm
# A named unprivileged user for uid 65532, so that libpq and pg_dump can look
# up the current user; the server entrypoint of the base image is replaced.
RUN groupadd --system --gid 65532 nonroot \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin nonroot
COPY --from=builder /src/target/release/cronjobs /usr/local/bin/cronjobs
USER 65532:65532
ENV LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/cronjobs"]
CMD ["--help"]
