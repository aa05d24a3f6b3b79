# The two commands a fresh machine needs: `make demo` and `make test`. Both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup build test demo contracts services-up services-down golden training-data evaluate clean native bench-imaging bench-inference bench-pipeline bench-submit soak

help:
	@echo "make demo   - stylize the sample images with the bundled model, in process (no servers)"
	@echo "make test   - every test suite (.NET + Python) against real RabbitMQ, Azurite, ONNX Runtime, libvips"
	@echo "make setup  - install what is missing (apt, npm ci, dotnet restore)"
	@echo "make contracts - regenerate contracts/schemas/*.schema.json from src/Contracts (commit the result)"
	@echo "make services-up / services-down - local RabbitMQ + Azurite for development"
	@echo "make training-data - the bundled model's training and held-out image folders (artifacts/training-data)"
	@echo "make soak [SOAK_JOBS=2000] [SOAK_ARGS=...] - chaos soak: 3 workers, kill -9, RabbitMQ restart, storage faults, poison jobs (docs/reliability.md)"
	@echo "make evaluate CHECKPOINT=... [STRENGTH='0 0.5 1'] - score a training checkpoint on the held-out images (docs/evaluation.md)"

setup:
	@scripts/setup.sh

build: setup native
	dotnet build MambaSt.Batch.sln --configuration Release --nologo --verbosity quiet

test: setup
	@scripts/test.sh

demo: setup
	@scripts/demo.sh

contracts:
	dotnet run --project tools/ContractsGen -c Release -- $(CURDIR)

services-up: setup
	@scripts/services.sh up

services-down:
	@scripts/services.sh down

golden:
	cd model && /usr/bin/python3 -m mambast.golden --out ../tests/fixtures/golden

training-data:
	@model/training-data.sh

SIZE ?= 128
STRENGTH ?= 1
evaluate: training-data
	@test -n "$(CHECKPOINT)" || { echo "make evaluate CHECKPOINT=path/to/last.pt (a train.py checkpoint)"; exit 2; }
	cd model && /usr/bin/python3 -m mambast.evaluate --checkpoint $(abspath $(CHECKPOINT)) --size $(SIZE) --strength $(STRENGTH) --threads 2 \
	  --content ../artifacts/training-data/heldout-content --style ../artifacts/training-data/heldout-style \
	  --out ../artifacts/eval-heldout

clean:
	rm -rf artifacts out demo-output
	find . -name bin -o -name obj -type d -prune -not -path './node_modules/*' -exec rm -rf {} +

native:
	@scripts/build-native.sh
	@echo "built artifacts/native/libmambast_ops.so"

bench-imaging: build
	dotnet run -c Release --no-build --project benchmarks/Imaging -- 5

bench-inference: build
	dotnet run -c Release --no-build --project benchmarks/Inference -- --quick

bench-pipeline: build
	@eval "$$(scripts/services.sh up)" && dotnet run -c Release --no-build --project benchmarks/Pipeline

bench-submit: build
	@eval "$$(scripts/services.sh up)" && dotnet run -c Release --no-build --project benchmarks/Submit -- 10000 1 32 256

# Opt-in (not part of make test): minutes of real RabbitMQ, Azurite and three workers under chaos, on its own ports.
SOAK_JOBS ?= 2000
soak: setup
	@scripts/soak/soak.sh --jobs $(SOAK_JOBS) $(SOAK_ARGS)
