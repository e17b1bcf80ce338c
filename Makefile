# Premises: the project's commands. The logic lives in scripts/.
#
#   make test         everything CI checks (scripts/test.sh; installs tools into .tools/ once)
#   make build        release arm64 Lambda binaries of every function (cargo lambda; target/lambda/<name>/bootstrap)
#   make generated    rewrite the generated files: template.yaml, stacks/*.yaml, docs/openapi.json
#   make deploy       sam build, then deploy with `sam deploy --guided` (docs/deploy.md)
#   make perf         size and cold-start init time of the health function (docs/perf.md)
#   make run          the local stack: every function in one process (cargo run)
#   make clean-tools  remove .tools/ (DynamoDB Local, the Python venv, logs)

SHELL := /bin/bash
VENV_BIN := $(CURDIR)/.tools/venv/bin

.PHONY: help test generated build deploy perf run clean-tools

help:
	@sed -n 's/^#   make /make /p' Makefile

test:
	bash scripts/test.sh

generated:
	PREMISES_BLESS=1 cargo test -p shared --test template --test api_doc

build:
	bash scripts/tools.sh build
	PATH="$(VENV_BIN):$$PATH" cargo lambda build --release --arm64 -p functions

deploy:
	bash scripts/tools.sh build
	PATH="$(VENV_BIN):$$PATH" SAM_CLI_TELEMETRY=0 sam build --beta-features
	@echo
	@echo "Built into .aws-sam/build. Deploy with:"
	@echo "  PATH=\"$(VENV_BIN):\$$PATH\" sam deploy --guided    # first time; answers go to samconfig.toml"
	@echo "  PATH=\"$(VENV_BIN):\$$PATH\" sam deploy             # afterwards"

perf:
	bash scripts/perf.sh

run:
	cargo run

clean-tools:
	rm -rf .tools
