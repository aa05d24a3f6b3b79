# syntax=docker/dockerfile:1.7
# The `mambast` CLI (submit | watch | report | retry-failed | stylize) as a one-shot container:
#   docker build -f deploy/submitter.Dockerfile -t mambast-submitter .
#   docker run --rm --env-file deploy/.env mambast-submitter submit ...
# Build context: the repository root. Base images pinned by tag; pin by digest for production
# (FROM mcr.microsoft.com/dotnet/runtime:10.0.12-noble@sha256:<digest>).
# The local `stylize` verb runs inference in process, so the CPU ONNX Runtime, libvips and the bundled
# model are in this image too.
# HEALTHCHECK NONE: a CLI that runs and exits has nothing to probe.

ARG DOTNET_SDK_VERSION=10.0.401
ARG DOTNET_RUNTIME_VERSION=10.0.12

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_SDK_VERSION}-noble AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY build/ build/
COPY src/ src/
RUN dotnet publish src/Submitter/MambaSt.Batch.Submitter.csproj \
      --configuration Release --output /out --nologo -p:UseAppHost=false

FROM scratch AS model
ARG MODEL_DIR=models/default
COPY ${MODEL_DIR}/ /models/default/

FROM mcr.microsoft.com/dotnet/runtime:${DOTNET_RUNTIME_VERSION}-noble AS submitter
WORKDIR /app
ENV DOTNET_RUNNING_IN_CONTAINER=true \
    Inference__ModelDirectory=/app/models/default \
    Inference__ExecutionProvider=Cpu \
    LD_LIBRARY_PATH=/app
COPY --from=build /out/ /app/
COPY --from=model /models/default/ /app/models/default/
# 'app' (uid 1654) ships with the .NET 8+ images.
USER 1654:1654
HEALTHCHECK NONE
ENTRYPOINT ["dotnet", "/app/mambast.dll"]
CMD ["--help"]
