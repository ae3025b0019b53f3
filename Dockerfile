# normd container image.
#   docker build -t normd .
#   docker run -p 50051:50051 -p 9464:9464 -v normd-data:/data normd
# The build stage runs the same install and build scripts as CI; the runtime stage
# holds the two binaries and the shared libraries they load, and runs as a non-root
# user with its RocksDB store on the /data volume.
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh build
COPY . .
RUN rm -rf build \
 && BUILD_TARGETS="normd normctl" scripts/build.sh -DNORMD_BUILD_TESTS=OFF -DNORMD_BUILD_BENCHMARKS=OFF \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_UNITY_BUILD=ON \
 && strip build/normd build/normctl

FROM debian:bookworm-slim
# The runtime libraries of build/normd and build/normctl (tests/python/test_deploy.py
# checks this list against what the binaries load).
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 librocksdb7.8 libabsl20220623 libhwy1 \
      libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 normd \
 && useradd --system --uid 10001 --gid normd --no-create-home --home-dir /data normd \
 && mkdir -p /data && chown normd:normd /data
COPY --from=build /src/build/normd /src/build/normctl /usr/local/bin/
USER 10001:10001
# Every normd flag can be set as NORMD_<FLAG>; these are the container's defaults.
ENV NORMD_LISTEN=0.0.0.0:50051 \
    NORMD_DATA_DIR=/data \
    NORMD_HTTP_LISTEN=0.0.0.0:9464
VOLUME /data
# gRPC API, Prometheus metrics.
EXPOSE 50051 9464
# grpc.health.v1 Check against the API port. With TLS on that port, also set
# NORMD_HEALTH_LISTEN=127.0.0.1:50052 and NORMCTL_HEALTH_SERVER=127.0.0.1:50052.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["sh", "-c", "exec normctl --server=\"${NORMCTL_HEALTH_SERVER:-127.0.0.1:50051}\" health"]
# What `docker stop` sends: normd drains in-flight RPCs for --shutdown_grace_seconds.
STOPSIGNAL SIGTERM
ENTRYPOINT ["normd"]
