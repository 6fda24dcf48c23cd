"""The deployable package: `make package` output, its template, and the packaged app on a
Lambda-like runtime (read-only code directory, the template's environment, secrets on moto).

Packaging takes ~30 s, so it happens once per session and only in the moto pass (the backend
does not matter here).
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import BACKEND, ROOT

pytestmark = pytest.mark.skipif(BACKEND != "moto", reason="packaging is checked once, in the moto pass")

PYTHON = sys.executable
CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))


@pytest.fixture(scope="session")
def packaged(tmp_path_factory):
    """`python -m infra.aws.package dev` into a temporary folder, with no AWS credentials at all."""
    out = tmp_path_factory.mktemp("dist") / "dev"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("JWT_SECRET", "STAGE")}
    env["HOME"] = str(tmp_path_factory.mktemp("home"))  # no ~/.aws either
    proc = subprocess.run([PYTHON, "-m", "infra.aws.package", "dev", "--out", str(out)], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="session")
def sam(packaged):
    return json.loads((packaged / "sam.json").read_text())


def _lint(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([CFN_LINT, *extra, "--", str(path)], capture_output=True, text=True, timeout=300)


# --- packaging ---------------------------------------------------------------------------------

def test_importing_the_app_needs_no_secret_on_a_deployed_stage():
    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET", "JWT_SECRET_NAME")}
    env.update(STAGE="prod", PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([PYTHON, "-c", "import app; print(len(app.app.routes))"], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 10


def test_package_lints_clean(packaged):
    proc = _lint(packaged / "sam.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_passes_the_serverless_rules(packaged):
    """Exceptions are written into the template (Metadata cfn-lint ignore_checks) with a reason."""
    proc = _lint(packaged / "sam.json", "--append-rules", "cfn_lint_serverless.rules")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_package_runs_python_313_with_memory_tracing_and_log_retention(sam):
    functions = {k: v for k, v in sam["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert {"APIHandler", "OnMainChange", "OnClick", "ReleaseMaturedRewards"} <= set(functions)
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["MemorySize"] == config["lambda_memory_size"] > 128
        assert props["Tracing"] == "Active"
        variables = props["Environment"]["Variables"]
        assert variables["STAGE"] == "dev" and variables["TABLE_PREFIX"] == "referral-dev-"
        assert variables["JWT_SECRET_NAME"] == {"Ref": "JwtSecretName"}
        assert variables["PUBLIC_BASE_URL"] == {"Ref": "PublicBaseUrl"}
        log_group = sam["Resources"][f"{name}LogGroup" if name != "APIHandler" else "ApiHandlerLogGroup"]
        assert log_group["Properties"]["RetentionInDays"] == config["stages"]["dev"]["log_retention_in_days"]
        assert log_group["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${%s}" % name}
    assert sam["Parameters"]["JwtSecretName"]["Default"] == "referral/dev/jwt"


def test_what_a_brand_must_say_is_a_parameter_checked_at_deploy(sam):
    """Where unknown codes land, the mini-program and the poster hosts reach every function from
    the stack's parameters; the landing URL has no default (a placeholder shop would be live)."""
    import re

    parameters = sam["Parameters"]
    for name, variable in [("DefaultLandingUrl", "DEFAULT_LANDING_URL"), ("MiniProgramLink", "MINI_PROGRAM_LINK"),
                           ("PosterImageHosts", "POSTER_IMAGE_HOSTS")]:
        assert sam["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"][variable] == {"Ref": name}
    assert "Default" not in parameters["DefaultLandingUrl"]

    def accepts(name: str, value: str) -> bool:
        return re.fullmatch(parameters[name]["AllowedPattern"], value) is not None

    assert accepts("DefaultLandingUrl", "https://shop.brand.cn/welcome?from=ref")
    assert not accepts("DefaultLandingUrl", "") and not accepts("DefaultLandingUrl", "http://shop.brand.cn")
    assert accepts("MiniProgramLink", "") and accepts("MiniProgramLink", "weixin://dl/business/?appid=wx1&path=pages/i")
    assert not accepts("MiniProgramLink", "javascript:alert(1)")
    assert accepts("PosterImageHosts", "cdn.brand.cn, img.brand.cn") and not accepts("PosterImageHosts", "a/b")


def test_stream_mappings_carry_every_setting_from_event_sources(sam):
    from chalicelib.event_sources import MAPPINGS
    from infra.aws.template import table_logical_id

    for function, mapping in MAPPINGS.items():
        logical = "".join(part.title() for part in function.split("_"))
        events = sam["Resources"][logical]["Properties"]["Events"]
        props = events[f"{logical}DynamodbEventSource"]["Properties"]
        assert props["Stream"] == {"Fn::GetAtt": [table_logical_id(mapping.table), "StreamArn"]}
        assert props["BatchSize"] == mapping.batch_size
        assert props["StartingPosition"] == mapping.starting_position
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert props["BisectBatchOnFunctionError"] is mapping.bisect_batch_on_error is True
        assert props["MaximumRetryAttempts"] == mapping.maximum_retry_attempts
        assert props["MaximumRecordAgeInSeconds"] == mapping.maximum_record_age_seconds
        assert props["ParallelizationFactor"] == mapping.parallelization_factor
        assert props.get("TumblingWindowInSeconds") == mapping.tumbling_window_seconds
        assert props["DestinationConfig"]["OnFailure"] == {
            "Type": "SQS", "Destination": {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}}
    assert MAPPINGS["on_click"].tumbling_window_seconds  # the click counters need it


def test_template_follows_a_changed_mapping(monkeypatch):
    """The values are read, not restated: change the declaration, the template changes."""
    from app import app
    from chalicelib import event_sources
    from infra.aws import template

    changed = event_sources.MAPPINGS["on_main_change"]._replace(maximum_retry_attempts=3,
                                                                 report_batch_item_failures=False)
    monkeypatch.setitem(event_sources.MAPPINGS, "on_main_change", changed)
    props = template.build("dev", app)["Resources"]["OnMainChange"]["Properties"]["Events"][
        "OnMainChangeDynamodbEventSource"]["Properties"]
    assert props["MaximumRetryAttempts"] == 3
    assert "FunctionResponseTypes" not in props


def test_tables_come_from_the_specs(sam):
    from chalicelib.store.tables import TABLES

    for spec in TABLES.values():
        table = sam["Resources"][f"{spec.logical.title()}Table"]
        props = table["Properties"]
        assert props["TableName"] == f"referral-dev-{spec.logical}"
        assert [i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])] == [i.name for i in spec.indexes]
        assert [i["IndexName"] for i in props.get("LocalSecondaryIndexes", [])] == [i.name for i in spec.local_indexes]
        if spec.stream_view:
            assert props["StreamSpecification"] == {"StreamViewType": spec.stream_view}
        else:
            assert "StreamSpecification" not in props
        assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert table["DeletionPolicy"] == "Delete" and "DeletionProtectionEnabled" not in props


def test_prod_tables_are_protected_and_retained():
    from app import app
    from infra.aws import template

    resources = template.build("prod", app)["Resources"]
    for logical in ("MainTable", "ClicksTable", "ControlTable"):
        assert resources[logical]["Properties"]["DeletionProtectionEnabled"] is True
        assert resources[logical]["DeletionPolicy"] == resources[logical]["UpdateReplacePolicy"] == "Retain"
        assert resources[logical]["Properties"]["TableName"].startswith("referral-prod-")


def test_failure_queues_schedule_dead_letters_and_api_settings(sam):
    resources = sam["Resources"]
    for queue in ("StreamFailureQueue", "ScheduleFailureQueue"):
        assert resources[queue]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert resources["StreamFailureQueue"]["Properties"]["QueueName"] == "referral-dev-stream-failures"
    schedule = resources["ReleaseMaturedRewards"]["Properties"]
    event = schedule["Events"]["ReleaseMaturedRewardsEvent"]["Properties"]
    assert event["Schedule"] == "rate(5 minutes)"
    assert event["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ScheduleFailureQueue", "Arn"]}}
    assert schedule["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["ScheduleFailureQueue", "Arn"]}
    api = resources["RestAPI"]["Properties"]
    assert api["TracingEnabled"] is True
    assert api["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]}
    assert api["MethodSettings"][0]["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}


def test_unknown_paths_get_the_json_envelope_the_local_gateway_gives(sam):
    from chalicelib.gateway_responses import NO_ROUTE

    answer = sam["Resources"]["GatewayResponseMissingAuthenticationToken"]["Properties"]
    assert answer["RestApiId"] == {"Ref": "RestAPI"}
    assert answer["StatusCode"] == str(NO_ROUTE.status) == "404"
    assert json.loads(answer["ResponseTemplates"]["application/json"]) == NO_ROUTE.body()


def test_role_may_send_to_the_failure_queues_and_read_the_secrets(sam):
    statements = sam["Resources"]["OnMainChangeRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    allowed = {(action, resource) for s in statements for action in s["Action"]
               for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}
    assert ("sqs:SendMessage", "arn:aws:sqs:*:*:referral-dev-stream-failures") in allowed
    assert ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:*:*:secret:referral/dev/*") in allowed
    assert ("dynamodb:GetRecords", "arn:aws:dynamodb:*:*:table/referral-dev-main/stream/*") in allowed


def test_a_failure_queue_consumer_is_wired_to_the_queue_resource():
    """A handler subscribed to the failure queue reads the queue the template creates."""
    from chalice import Chalice

    from chalicelib.event_sources import FAILURE_QUEUE_PLACEHOLDER_ARN, MAPPINGS
    from infra.aws import template

    throwaway = Chalice(app_name="throwaway")
    for name, mapping in MAPPINGS.items():
        throwaway.on_dynamodb_record(stream_arn=f"arn:placeholder/{mapping.table}", name=name)(lambda event: None)
    throwaway.on_sqs_message(queue_arn=FAILURE_QUEUE_PLACEHOLDER_ARN, batch_size=10, name="on_stream_failure")(lambda event: None)
    throwaway.on_sqs_message(queue="some-other-queue", name="on_other")(lambda event: None)
    resources = template.build("dev", throwaway)["Resources"]
    consumer = resources["OnStreamFailure"]["Properties"]["Events"]["OnStreamFailureSqsEventSource"]["Properties"]
    assert consumer["Queue"] == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
    assert "Events" not in resources["OnOther"].get("Properties", {})  # left as Chalice writes it


def test_zip_ships_unchecked_hash_bytecode_for_every_module(packaged):
    with zipfile.ZipFile(packaged / "deployment.zip") as zf:
        files = set(zf.namelist())
        sources = [n for n in files if n.endswith(".py")]
        missing = []
        for source in sources:
            folder, _, module = source.rpartition("/")
            pyc = f"{folder + '/' if folder else ''}__pycache__/{module[:-3]}.cpython-313.pyc"
            if pyc not in files:
                missing.append(source)
        assert not missing, missing[:10]
        header = zf.read("chalicelib/core/__pycache__/config.cpython-313.pyc")[:16]
        flags = int.from_bytes(header[4:8], "little")
        assert flags == 0b01  # hash-based, not checked against the source: timestamps do not matter
        assert {"boto3/__init__.py", "app.py", "chalicelib/core/secrets.py"} <= files


# --- the packaged app on a Lambda-like runtime ---------------------------------------------------

PROBE = r'''
import json, os, sys, time
code_dir = sys.argv[1]
sys.path.insert(0, code_dir)
from moto import mock_aws

with mock_aws():
    import boto3, jwt
    secret = "rotating-secret-" + "s" * 32
    boto3.client("secretsmanager").create_secret(Name=os.environ["JWT_SECRET_NAME"], SecretString=secret)
    import app as packaged  # the import Lambda does at cold start, with the template's environment
    from chalicelib import bootstrap
    bootstrap.prepare(boto3.client("dynamodb"), os.environ["TABLE_PREFIX"])  # the stack's tables

    def token(sub, role):
        now = int(time.time())
        return jwt.encode({"sub": sub, "role": role, "iss": "referral-service", "aud": "referral-api",
                           "iat": now, "exp": now + 600, "jti": f"probe-{sub}"}, secret, algorithm="HS256")

    def call(method, path, bearer, body=None, raw=False, resource=None, params=None):
        event = {"resource": resource or path, "path": path, "httpMethod": method,
                 "headers": {"Authorization": f"Bearer {bearer}", "Content-Type": "application/json",
                             "Accept": "image/png" if raw else "application/json"},
                 "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
                 "pathParameters": params, "stageVariables": None, "isBase64Encoded": False,
                 "body": json.dumps(body) if body is not None else None,
                 "requestContext": {"resourcePath": resource or path, "httpMethod": method, "stage": "api",
                                    "requestId": "r-1", "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                                    "identity": {"sourceIp": "203.0.113.9"}}}
        response = packaged.app(event, None)
        if raw:
            return response["statusCode"], response.get("isBase64Encoded", False), len(response["body"])
        return response["statusCode"], json.loads(response["body"])

    signup = call("POST", "/v1/events/signups", token("brand-backend", "service"), {"member_id": "m-probe"})
    member_id = signup[1]["member"]["member_id"]
    code = call("GET", "/v1/members/me/code", token(member_id, "member"))
    link = call("POST", "/v1/links", token(member_id, "member"), {"channel": "poster"})[1]
    poster = call("GET", f"/v1/links/{link['link_id']}/poster.png", "", raw=True,  # Pillow and the font from the zip
                  resource="/v1/links/{link_id}/poster.png", params={"link_id": link["link_id"]})
    import PIL
    print(json.dumps({"signup": signup[0], "code": code, "poster": poster, "pil_file": PIL.__file__,
                      "app_file": packaged.__file__,
                      "boto3_file": boto3.__file__, "modules_from_code_dir": sorted(
                          m for m, mod in sys.modules.items()
                          if getattr(mod, "__file__", None) and mod.__file__.startswith(code_dir)
                          and m.split(".")[0] in ("app", "chalicelib", "pynamodb", "boto3", "botocore", "jwt"))[:3]}))
'''


def _unpack_read_only(zip_path: Path, target: Path) -> Path:
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(target)
    for path in [target, *target.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return target


def _template_environment(sam: dict, function: str) -> dict[str, str]:
    """The function's environment as CloudFormation would set it with the parameter defaults."""
    defaults = {name: str(p.get("Default", "")) for name, p in sam["Parameters"].items()}
    variables = sam["Resources"][function]["Properties"]["Environment"]["Variables"]
    return {k: defaults[v["Ref"]] if isinstance(v, dict) else v for k, v in variables.items()}


def test_packaged_app_serves_requests_with_the_template_environment(packaged, sam, tmp_path):
    code_dir = _unpack_read_only(packaged / "deployment.zip", tmp_path / "task")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1",
           "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "lambda-role",
           "AWS_SECRET_ACCESS_KEY": "lambda-role", "AWS_LAMBDA_FUNCTION_NAME": "APIHandler",
           **_template_environment(sam, "APIHandler")}
    assert env["PUBLIC_BASE_URL"] == "" and env["JWT_SECRET_NAME"] == "referral/dev/jwt"
    try:
        proc = subprocess.run([PYTHON, "-c", PROBE, str(code_dir)], env=env, capture_output=True, text=True,
                              timeout=300, cwd=str(tmp_path))
    finally:
        for path in [code_dir, *code_dir.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["app_file"].startswith(str(code_dir)) and result["boto3_file"].startswith(str(code_dir))
    assert result["signup"] in (200, 201)
    status, base64_encoded, length = result["poster"]
    assert status == 200 and base64_encoded and length > 10_000  # the manylinux Pillow wheel runs from the zip
    assert result["pil_file"].startswith(str(code_dir))
    status, body = result["code"]
    assert status == 200, body
    # no PUBLIC_BASE_URL: share links point at the API's own URL, never at localhost
    assert body["url"].startswith("https://abc123.execute-api.us-east-1.amazonaws.com/api/r/"), body


# Types moto's CloudFormation cannot create from SAM's output (its RestApi wants a `Name`, which
# SAM leaves to the OpenAPI body); everything else in the expanded template is created.
NOT_ON_MOTO = {"AWS::ApiGateway::Account", "AWS::ApiGateway::Stage", "AWS::ApiGateway::Deployment",
               "AWS::ApiGateway::RestApi", "AWS::Lambda::Permission"}


@pytest.mark.filterwarnings("ignore:Tried to parse")  # QueuePolicy, EventInvokeConfig: skipped by moto
def test_expanded_template_creates_tables_queues_and_mappings_on_moto(packaged, sam):
    import copy

    import boto3
    from moto import mock_aws
    from samtranslator.translator.transform import transform

    from chalicelib.event_sources import MAPPINGS

    class NoManagedPolicies:
        def load(self):
            return {}

    template = copy.deepcopy(sam)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://code-bucket/deployment.zip"
    expanded = transform(template, {}, NoManagedPolicies())
    expanded["Resources"] = {k: v for k, v in expanded["Resources"].items() if v["Type"] not in NOT_ON_MOTO}
    expanded.pop("Outputs", None)  # they name the API
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="code-bucket")
        s3.put_object(Bucket="code-bucket", Key="deployment.zip", Body=(packaged / "deployment.zip").read_bytes())
        cloudformation = boto3.client("cloudformation", region_name="us-east-1")
        cloudformation.create_stack(StackName="referral-dev", TemplateBody=json.dumps(expanded),
                                    Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
                                    Parameters=[{"ParameterKey": "DefaultLandingUrl",
                                                 "ParameterValue": "https://shop.brand.cn/welcome"}])
        stack = cloudformation.describe_stacks(StackName="referral-dev")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        main = dynamodb.describe_table(TableName="referral-dev-main")["Table"]
        assert {i["IndexName"] for i in main["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2"}
        assert [i["IndexName"] for i in main["LocalSecondaryIndexes"]] == ["lsi1"]
        assert main["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert dynamodb.describe_table(TableName="referral-dev-clicks")["Table"]["LatestStreamArn"]
        assert "LatestStreamArn" not in dynamodb.describe_table(TableName="referral-dev-control")["Table"]
        queues = boto3.client("sqs", region_name="us-east-1").list_queues()["QueueUrls"]
        assert {url.rsplit("/", 1)[1] for url in queues} == {"referral-dev-stream-failures",
                                                             "referral-dev-schedule-failures"}
        mappings = boto3.client("lambda", region_name="us-east-1").list_event_source_mappings()["EventSourceMappings"]
        sources = [m["EventSourceArn"] for m in mappings]
        streams = {arn.split(":table/")[1].split("/")[0] for arn in sources if ":dynamodb:" in arn}
        assert streams == {f"referral-dev-{m.table}" for m in MAPPINGS.values()}
        # The failure queue's consumer reads the queue the stack made, not a name of its own.
        assert [arn.rsplit(":", 1)[1] for arn in sources if ":sqs:" in arn] == ["referral-dev-stream-failures"]


def test_seed_creates_the_default_campaign_of_a_deployed_stage_once(monkeypatch, capsys):
    from moto import mock_aws

    from chalicelib.campaigns.service import clear_caches, get
    from chalicelib.core import aws
    from chalicelib.core.config import settings
    from chalicelib.store.tables import ensure_tables
    from infra.aws import seed

    monkeypatch.setenv("STAGE", "dev")
    monkeypatch.delenv("TABLE_PREFIX", raising=False)
    monkeypatch.delenv("DDB_ENDPOINT", raising=False)
    settings.cache_clear()
    aws.reset()
    clear_caches()
    try:
        with mock_aws():
            ensure_tables(aws.dynamodb(), "referral-dev-")  # what the stack creates
            assert seed.main() == 0 and seed.main() == 0
            assert get("default").campaign_id == "default"
    finally:
        monkeypatch.undo()
        settings.cache_clear()
        aws.reset()
        clear_caches()
    out = capsys.readouterr().out.splitlines()
    assert out == ["default campaign created in referral-dev-main", "default campaign already there in referral-dev-main"]
