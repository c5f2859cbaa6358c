# Two entry points (see README Quickstart): `make demo` and `make test`. Both set up first.
PY ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# One venv per interpreter, so that `make pytest PY=python3.13` leaves .venv alone.
VENV := $(if $(filter python3,$(PY)),.venv,.venv-$(notdir $(PY)))
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never

.PHONY: setup demo test pytest lint typecheck proto clean

$(UV):
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

# --compile-bytecode: every worker process (jobs, trial runners, servers) imports XGBoost,
# scikit-learn and pandas; from source, without .pyc files (PYTHONDONTWRITEBYTECODE is set on
# some machines, and uv does not compile by default), that took 2-3x longer.
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python $(PY) --compile-bytecode
	touch $@

setup: $(VENV)/.synced
	@$(BIN)/python -m compileall -q src > /dev/null

demo: setup
	$(BIN)/modelyard demo --exit --port 0

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

# Two test processes (pytest-xdist) keep both cores of these machines busy while one test
# waits on its subprocesses (CLI runs, servers, job workers): 8.3 -> 5.2 min for the suite.
# One file per process (loadfile): a module's fixtures (a trained home, a registry filled
# through the CLI, a running server) are built once, not once in each process that gets some
# of its tests, as work stealing did. Measured on a quiet machine, 2026-12-04: tests/cli
# 288 s -> 208 s (500 -> 360 CPU-seconds), the whole 3.11 suite 10:19.
PYTEST_WORKERS ?= 2
PYTEST_XDIST = -n $(PYTEST_WORKERS) --dist loadfile

test: lint
	$(BIN)/pytest $(PYTEST_XDIST)

# The tests alone, for a second interpreter (lint and type checks need one run, not two).
# SUITES picks test folders (default: all of them).
SUITES ?= tests
pytest: setup
	$(BIN)/pytest $(PYTEST_XDIST) $(SUITES)

# The V2 gRPC protocol's Python modules, generated from its .proto and committed (so neither
# installing nor serving needs grpcio-tools). Run after editing the .proto. The messages are
# built in a descriptor pool of their own: Triton's client defines the same `inference.*` names
# in protobuf's default pool, and both must load in one process (a test, a model calling Triton).
PROTO := src/modelyard/serving/v2/grpc_predict_v2.proto
PB2 := $(PROTO:.proto=_pb2.py)

proto: setup
	$(BIN)/python -m grpc_tools.protoc -Isrc --python_out=src --pyi_out=src --grpc_python_out=src $(PROTO)
	$(BIN)/python -c "import pathlib, sys; p = pathlib.Path(sys.argv[1]); t = p.read_text(); \
	  old = '_descriptor_pool.Default().AddSerializedFile('; assert t.count(old) == 1, p; \
	  p.write_text(t.replace(old, '_descriptor_pool.DescriptorPool().AddSerializedFile('))" $(PB2)

clean:
	rm -rf .venv .venv-* $(TOOLS)
