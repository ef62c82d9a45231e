# syntax=docker/dockerfile:1
# The `todo-app` image. Build from the workspace root:
#   docker build -f docker/app.Dockerfile --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t docket-app .
# Dependencies are compiled in their own layer (cargo-chef) so that a source
# change rebuilds only Docket's crates; the cook builds only this binary's
# dependencies (the recipe holds the whole workspace's manifests).
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
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin todo-app
COPY . .
# Reported by GET /version next to the crate version.
ARG GIT_COMMIT=unknown
RUN GIT_COMMIT="${GIT_COMMIT}" cargo build --release --locked --bin todo-app

# Distroless `cc`: glibc and libgcc for a Rust binary, CA certificates, no
# shell, no package manager; `nonroot` is uid 65532, as in the manifests.
FROM gcr.io/distroless/cc-debian12:nonroot
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
