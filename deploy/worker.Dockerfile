# syntax=docker/dockerfile:1.7
# MambaSt.Batch worker image, two targets from one file:
#   docker build -f deploy/worker.Dockerfile --target gpu -t mambast-worker:gpu .   (default: last stage)
#   docker build -f deploy/worker.Dockerfile --target cpu -t mambast-worker:cpu .
# Build context: the repository root (see .dockerignore). Every base image is pinned by tag; for
# reproducible production builds also pin by digest, e.g. FROM nvidia/cuda:13.0.2-...@sha256:<digest>.
#
# Native libraries at run time:
#   cpu: libonnxruntime.so from the NuGet package Microsoft.ML.OnnxRuntime (build/OnnxRuntime.props) + libvips
#        (NuGet NetVips.Native.linux-x64), copied into the publish output by the projects themselves.
#   gpu: published with -p:OnnxRuntimeFlavor=Cuda: Microsoft.ML.OnnxRuntime.Managed + Microsoft.ML.OnnxRuntime.Gpu.Linux
#        (libonnxruntime.so, libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so from one build;
#        never the .Gpu meta-package, which adds Windows DLLs). The CUDA provider links CUDA 13 (libcudart.so.13,
#        libcublas(Lt).so.13, libcurand.so.10) and loads cuDNN 9: the gpu stage runs ldd on it and fails the build
#        on any library the base image (CUDA_IMAGE_TAG) lacks. The ort-check stage fails the build unless the core
#        library reports CUDAExecutionProvider.
#   both: libmambast_ops.so (native/, the fused selective scan, CPU kernel) built in the build stage against the
#        restored package's headers; the engine runs the bundled model's fused graphs with it (Inference__Scan=auto).
#   ORT_DISABLE_TELEMETRY=1 and MASSTRANSIT_USAGE_TELEMETRY=false: no usage telemetry from either library.
# HEALTHCHECK: deploy/healthcheck.sh, a bash /dev/tcp HTTP GET (no curl or wget in these images).

ARG DOTNET_SDK_VERSION=10.0.401
ARG DOTNET_RUNTIME_VERSION=10.0.12
ARG CUDA_IMAGE_TAG=13.0.2-cudnn-runtime-ubuntu24.04
ARG PYTHON_VERSION=3.12.12

# ---- build: dotnet publish (framework-dependent, linux-x64) + libmambast_ops.so ----------------------------
FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_SDK_VERSION}-noble AS build
ARG ORT_FLAVOR=Cpu
ARG ORT_PACKAGE_ID=microsoft.ml.onnxruntime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY build/ build/
COPY src/ src/
COPY native/ native/
COPY scripts/ort-package.sh scripts/
# The op library is built before the publish so that src/Inference copies it next to the worker.
RUN dotnet restore src/Worker/MambaSt.Batch.Worker.csproj -p:OnnxRuntimeFlavor=${ORT_FLAVOR} \
 && cmake -S native -B artifacts/native -DCMAKE_BUILD_TYPE=Release -DMAMBAST_OPS_CUDA=OFF -DMAMBAST_OPS_TESTS=OFF \
      -DMAMBAST_ORT_PACKAGE="$(ORT_PACKAGE_ID=${ORT_PACKAGE_ID} scripts/ort-package.sh)" \
 && cmake --build artifacts/native -j"$(nproc)" \
 && dotnet publish src/Worker/MambaSt.Batch.Worker.csproj \
      --configuration Release --output /out --nologo \
      -p:UseAppHost=false -p:OnnxRuntimeFlavor=${ORT_FLAVOR} \
 && test -f /out/libmambast_ops.so

# ---- build-gpu: the same sources against Managed + Gpu.Linux (CUDA-enabled core + providers) ----------------
# -r linux-x64 puts the Linux native libraries in /out beside the assemblies.
FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_SDK_VERSION}-noble AS build-gpu
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY build/ build/
COPY src/ src/
COPY native/ native/
COPY scripts/ort-package.sh scripts/
RUN dotnet restore src/Worker/MambaSt.Batch.Worker.csproj --runtime linux-x64 -p:OnnxRuntimeFlavor=Cuda \
 && cmake -S native -B artifacts/native -DCMAKE_BUILD_TYPE=Release -DMAMBAST_OPS_CUDA=OFF -DMAMBAST_OPS_TESTS=OFF \
      -DMAMBAST_ORT_PACKAGE="$(ORT_PACKAGE_ID=microsoft.ml.onnxruntime.gpu.linux scripts/ort-package.sh)" \
 && cmake --build artifacts/native -j"$(nproc)" \
 && dotnet publish src/Worker/MambaSt.Batch.Worker.csproj \
      --configuration Release --output /out --nologo \
      --runtime linux-x64 --self-contained false \
      -p:UseAppHost=false -p:OnnxRuntimeFlavor=Cuda \
 && test -f /out/libmambast_ops.so

# ---- ort-check: fail the gpu build unless its libonnxruntime.so can run the CUDA provider (no GPU needed) ----
FROM python:${PYTHON_VERSION}-slim-bookworm AS ort-check
COPY deploy/check-onnxruntime-cuda.py /usr/local/bin/check-onnxruntime-cuda
COPY --from=build-gpu /out/ /check/
RUN python3 /usr/local/bin/check-onnxruntime-cuda /check /onnxruntime-providers.txt

# ---- model: the bundled model (ONNX graphs + model card) -----------------------------------------------------
FROM scratch AS model
ARG MODEL_DIR=models/default
COPY ${MODEL_DIR}/ /models/default/

# ---- cpu: ASP.NET Core runtime on Ubuntu 24.04 ---------------------------------------------------------------
FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_RUNTIME_VERSION}-noble AS cpu
WORKDIR /app
ENV ASPNETCORE_HTTP_PORTS=8080 \
    DOTNET_RUNNING_IN_CONTAINER=true \
    DOTNET_gcServer=1 \
    Inference__ModelDirectory=/app/models/default \
    Inference__ExecutionProvider=Cpu \
    ORT_DISABLE_TELEMETRY=1 \
    MASSTRANSIT_USAGE_TELEMETRY=false \
    LD_LIBRARY_PATH=/app
COPY --from=build /out/ /app/
COPY --from=model /models/default/ /app/models/default/
COPY --chmod=0755 deploy/healthcheck.sh /usr/local/bin/healthcheck
# 'app' (uid 1654) ships with the .NET 8+ images.
USER 1654:1654
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["/usr/local/bin/healthcheck", "/health/ready"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["dotnet", "MambaSt.Batch.Worker.dll"]

# ---- dotnet-runtime: the ASP.NET Core shared runtime to lay onto the CUDA image ------------------------------
FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_RUNTIME_VERSION}-noble AS dotnet-runtime

# ---- gpu: CUDA 13 + cuDNN runtime on Ubuntu 24.04 (default target) -------------------------------------------
FROM nvidia/cuda:${CUDA_IMAGE_TAG} AS gpu
# .NET's own run-time needs on Ubuntu 24.04 (InvariantGlobalization: no ICU).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libssl3t64 zlib1g tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 1654 app && useradd --uid 1654 --gid 1654 --no-create-home --shell /usr/sbin/nologin app
COPY --from=dotnet-runtime /usr/share/dotnet/ /usr/share/dotnet/
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
WORKDIR /app
ENV ASPNETCORE_HTTP_PORTS=8080 \
    DOTNET_RUNNING_IN_CONTAINER=true \
    DOTNET_gcServer=1 \
    Inference__ModelDirectory=/app/models/default \
    Inference__ExecutionProvider=Cuda \
    Inference__CudaFallback=Fail \
    ORT_DISABLE_TELEMETRY=1 \
    MASSTRANSIT_USAGE_TELEMETRY=false \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    LD_LIBRARY_PATH=/app:/usr/local/cuda/lib64:/usr/local/nvidia/lib:/usr/local/nvidia/lib64
COPY --from=build-gpu /out/ /app/
# The CUDA provider must find every CUDA/cuDNN library it links in this image (only libcuda.so.1, the driver's,
# comes from the host at run time): a Microsoft.ML.OnnxRuntime.Gpu.Linux built for another CUDA major than
# CUDA_IMAGE_TAG fails here, at build time, instead of crash-looping every pod on its first session.
RUN missing="$(ldd /app/libonnxruntime_providers_cuda.so | grep 'not found' | grep -v 'libcuda\.so' || true)"; \
    if [ -n "$missing" ]; then \
      echo "libonnxruntime_providers_cuda.so needs libraries this CUDA image lacks (set CUDA_IMAGE_TAG to the CUDA major the ONNX Runtime package was built for):"; \
      echo "$missing"; exit 1; \
    fi
# The ort-check report (its providers list); copying it makes the check part of every gpu build.
COPY --from=ort-check /onnxruntime-providers.txt /usr/local/share/mambast/onnxruntime-providers.txt
COPY --from=model /models/default/ /app/models/default/
COPY --chmod=0755 deploy/healthcheck.sh /usr/local/bin/healthcheck
USER 1654:1654
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 CMD ["/usr/local/bin/healthcheck", "/health/ready"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["dotnet", "MambaSt.Batch.Worker.dll"]
