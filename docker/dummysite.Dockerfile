# syntax=docker/dockerfile:1
# The `dummysite` image: the DummySite controller (kustomize/components/dummysite).
# Build from the workspace root:
#   docker build -f docker/dummysite.Dockerfile -t docket-dummysite .
# Same shape as services.Dockerfile: cargo-chef dependency layer, release build,
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
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin dummysite
COPY . .
ARG GIT_COMMIT=unknown
RUN GIT_COMMIT="${GIT_COMMIT}" cargo build --release --locked --bin dummysite

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /src/target/release/dummysite /usr/local/bin/dummysite
USER 65532:65532
EXPOSE 8080
ENV PORT=8080 LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/dummysite"]
