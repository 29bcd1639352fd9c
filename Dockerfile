# cowork-ingest: one image for every subcommand (edge, consume, migrate, keys, redrive, forget).
#   docker build -t cowork-ingest .
#   docker run --rm cowork-ingest --help

# ---- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder

# librdkafka is built from source by rdkafka-sys with the C toolchain the image already has;
# it links OpenSSL (feature "ssl") and zlib from the system.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first, against stub sources, so that editing the crate does not rebuild them.
# Cargo.toml names its benches, so each needs a stub file for the manifest to load.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && for bench in $(sed -n '/^\[\[bench\]\]/,/^name/ s/^name *= *"\(.*\)"/\1/p' Cargo.toml); do \
      echo 'fn main() {}' > "benches/$bench.rs"; \
    done \
 && cargo build --release --locked --bin cowork-ingest \
 && rm -rf src benches

COPY src src
COPY schemas schemas
COPY benches benches
# COPY keeps the files' old mtimes: touch them so cargo rebuilds the crate over the stub.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin cowork-ingest \
 && install -m 0755 target/release/cowork-ingest /usr/local/bin/cowork-ingest

# ---- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim

# libssl3 and zlib for librdkafka, CA certificates for TLS to Kafka and ClickHouse, curl for
# health checks (`curl -fsS http://127.0.0.1:9464/readyz`).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g curl \
 && rm -rf /var/lib/apt/lists/*

# A non-root user. /etc/cowork holds the key file (edge.keys_path); it is created here, owned by
# that user, so a volume mounted on it starts with the right owner.
RUN groupadd --system --gid 10001 cowork \
 && useradd --system --uid 10001 --gid cowork --home-dir /var/lib/cowork --create-home \
      --shell /usr/sbin/nologin cowork \
 && install -d -o cowork -g cowork -m 0700 /etc/cowork

COPY --from=builder /usr/local/bin/cowork-ingest /usr/local/bin/cowork-ingest

USER cowork
WORKDIR /var/lib/cowork
# OTLP gRPC, OTLP HTTP, the edge's admin port, the consumer's admin port.
EXPOSE 4317 4318 9464 9465
ENTRYPOINT ["cowork-ingest"]
CMD ["--help"]
