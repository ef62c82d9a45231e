# syntax=docker/dockerfile:1
# The `broadcaster` image. Build from the workspace root:
#   docker build -f docker/broadcaster.Dockerfile -t docket-broadcaster .
# Same shape as app.Dockerfile: cargo-chef dependency layer, release build,
# distroless runtime as uid 65532.

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
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin broadcaster
COPY . .
ARG GIT_COMMIT=unknown
RUN GIT_COMMIT="${GIT_COMMIT}" cargo build --release --locked --bin broadcaster

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/broadcaster /usr/local/bin/broadcaster
USER 65532:65532
EXPOSE 8081
ENV PORT=8081 LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/broadcaster"]
