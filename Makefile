# One entry point for people and CI. `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN    := PYTHONPATH=lambdas:. $(PY)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE :=

# The policy file the deployment uses: cdk.json's policyFile context setting, else the example.
POLICY ?= $(shell $(PYTHON) -c 'import json; print(json.load(open("cdk.json")).get("context", {}).get("policyFile") or "policy.example.yaml")' 2>/dev/null || echo policy.example.yaml)

.PHONY: help venv test lint typecheck unit synth deploy demo sandbox slack-manifest slack-app audit redrive bench policy-check policy-explain spoke-template clean

help:
	@echo "make demo            run the whole approval loop locally (stand-ins for S3 Control, Slack, DynamoDB)"
	@echo "make test            lint and the whole test suite (what CI runs)"
	@echo "make sandbox         start the local stand-ins and leave them running"
	@echo "make synth           synthesize the stack into cdk.out/ (no AWS account needed; CONTEXT='-c key=value')"
	@echo "make deploy          deploy with the AWS CDK CLI (needs AWS credentials)"
	@echo "make spoke-template SPOKE='{\"hubEventBusArn\": \"…\"}'"
	@echo "                     write the spoke stack's template (for StackSets) into cdk.out/ (SPOKE: the hub's SpokeContext output;"
	@echo "                     without it, cdk.json's spoke setting)"
	@echo "make slack-manifest  write slack-app-manifest.yaml for this deployment"
	@echo "make slack-app       create (or, with APP_ID=A…, update) the Slack app from it (SLACK_CONFIG_TOKEN=…)"
	@echo "make audit JOB=<id>  print the decision history of a job"
	@echo "make policy-check    validate the approval policy (POLICY=file; default: cdk.json's policyFile or the example)"
	@echo "make policy-explain JOB=<file> [REQUESTER=<arn>] [TAGS=k=v,...]"
	@echo "                     which policy rule a DescribeJob JSON meets, and why (POLICY=file as above)"
	@echo "make bench           run the quick benchmarks under bench/ (the shipped bundle's cold start, callback ack, policy)"
	@echo "                     (longer ones, by hand: bench/burst.py, bench/load.py, bench/soak.py; see the README)"
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
	$(PY) -m infra.deploy_guard $(CDK_ARGS)
	npx --yes aws-cdk@2 deploy --app "$(PY) app.py" $(CDK_ARGS)

spoke-template: $(STAMP)
	$(PY) -m infra.spoke $(if $(SPOKE),-c spoke='$(SPOKE)')

demo: $(STAMP)
	$(RUN) -m sandbox demo

sandbox: $(STAMP)
	$(RUN) -m sandbox serve

slack-manifest: $(STAMP)
	$(PY) -m infra.slack_manifest $(if $(STACK_OUTPUTS),--outputs $(STACK_OUTPUTS)) --out slack-app-manifest.yaml

slack-app: slack-manifest
	$(PY) -m infra.slack_app --manifest slack-app-manifest.yaml $(if $(APP_ID),--app-id $(APP_ID))

audit: $(STAMP)
	@test -n "$(JOB)" || (echo "usage: make audit JOB=<job id> [SANDBOX=1] [ACCOUNT=<id>] [REGION=<region>] [TABLE=<name> | STACK=<name>]" && exit 2)
	$(RUN) -m approvals.audit_cli $(JOB) $(if $(SANDBOX),--sandbox) $(if $(ACCOUNT),--account $(ACCOUNT)) $(if $(REGION),--region $(REGION)) $(if $(TABLE),--table $(TABLE)) $(if $(STACK),--stack $(STACK))

redrive: $(STAMP)
	@test -n "$(QUEUE)" || (echo "usage: make redrive QUEUE=job-events|events|notifier-failures [APPLY=1] [STACK=<name>] [REGION=<region>]" && exit 2)
	$(RUN) -m approvals.redrive $(QUEUE) $(if $(APPLY),--apply) $(if $(STACK),--stack $(STACK)) $(if $(REGION),--region $(REGION))

policy-check: $(STAMP)
	$(RUN) -m approvals.policy check $(POLICY)

policy-explain: $(STAMP)
	@test -n "$(JOB)" || (echo "usage: make policy-explain JOB=<DescribeJob JSON file> [REQUESTER=<principal ARN>] [TAGS=k=v,...] [POLICY=<file>]" && exit 2)
	$(RUN) -m approvals.policy explain --policy $(POLICY) $(JOB) $(if $(REQUESTER),--requester '$(REQUESTER)') $(if $(TAGS),--tags '$(TAGS)')

bench: $(STAMP)
	$(RUN) bench/bundle_coldstart.py
	$(RUN) bench/import_times.py
	$(RUN) bench/callback_ack.py
	$(RUN) bench/policy_eval.py

clean:
	rm -rf cdk.out build .pytest_cache .ruff_cache .mypy_cache
