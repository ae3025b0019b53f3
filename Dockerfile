# normd container image. The build stage runs the same install and build scripts as CI.
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/install-deps.sh scripts/
RUN scripts/install-deps.sh build
COPY . .
RUN rm -rf build && scripts/build.sh -DNORMD_BUILD_TESTS=OFF -DNORMD_BUILD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=Release

FROM debian:bookworm-slim
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 librocksdb7.8 libabsl20220623 libhwy1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data normd \
 && mkdir -p /data && chown normd /data
COPY --from=build /src/build/normd /src/build/normctl /usr/local/bin/
USER normd
VOLUME /data
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s CMD ["normctl", "--server=127.0.0.1:50051", "health"]
ENTRYPOINT ["normd", "--listen=0.0.0.0:50051", "--data_dir=/data"]
