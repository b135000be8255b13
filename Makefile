# One entry point for people and CI. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN    := PYTHONPATH=lambdas:. $(PY)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE :=

.PHONY: help venv test lint typecheck unit synth deploy demo sandbox slack-manifest audit bench clean

help:
	@echo "make demo            run the whole approval loop locally (stand-ins for S3 Control, Slack, DynamoDB)"
	@echo "make test            lint and the whole test suite (what CI runs)"
	@echo "make sandbox         start the local stand-ins and leave them running"
	@echo "make synth           synthesize the stack into cdk.out/ (no AWS account needed; CONTEXT='-c key=value')"
	@echo "make deploy          deploy with the AWS CDK CLI (needs AWS credentials)"
	@echo "make slack-manifest  write slack-app-manifest.yaml for this deployment"
	@echo "make audit JOB=<id>  print the decision history of a job"
	@echo "make bench           run the benchmarks under bench/ (import times, callback ack)"
	@echo "make lint            ruff, ruff format --check and mypy (part of make test)"
	@echo "make typecheck       mypy only"

$(STAMP): requirements.txt requirements-dev.txt lambdas/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: lint
	$(VENV)/bin/pytest

unit: $(STAMP)
	$(VENV)/bin/pytest tests/unit tests/sandbox

synth: $(STAMP)
	$(PY) app.py $(CONTEXT)

deploy: $(STAMP)
	npx --yes aws-cdk@2 deploy --app "$(PY) app.py" $(CDK_ARGS)

demo: $(STAMP)
	$(RUN) -m sandbox demo

sandbox: $(STAMP)
	$(RUN) -m sandbox serve

slack-manifest: $(STAMP)
	$(PY) -m infra.slack_manifest $(if $(STACK_OUTPUTS),--outputs $(STACK_OUTPUTS)) --out slack-app-manifest.yaml

audit: $(STAMP)
	@test -n "$(JOB)" || (echo "usage: make audit JOB=<job id> [SANDBOX=1] [ACCOUNT=<id>] [REGION=<region>] [TABLE=<name>]" && exit 2)
	$(RUN) -m approvals.audit_cli $(JOB) $(if $(SANDBOX),--sandbox) $(if $(ACCOUNT),--account $(ACCOUNT)) $(if $(REGION),--region $(REGION)) $(if $(TABLE),--table $(TABLE))

bench: $(STAMP)
	$(RUN) bench/import_times.py
	$(RUN) bench/callback_ack.py

clean:
	rm -rf cdk.out build .pytest_cache .ruff_cache .mypy_cache
