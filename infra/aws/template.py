"""The merge template for `chalice package --merge-template`, generated from the declarations.

Chalice writes the functions, roles and the API; this adds what it cannot express, read from
the one place each thing is declared:
- tables from `chalicelib/store/tables.py` (keys, GSIs, LSI, stream view, TTL) with point-in-time
  recovery, and in prod deletion protection and `Retain`;
- every stream event source from `chalicelib/event_sources.py` (`MAPPINGS`): the table's
  `StreamArn`, partial-batch reporting, bisect, retry limit, record age, parallelization,
  tumbling window, and the on-failure queue;
- the failure queue's consumer (`reads_failure_queue`) pointed at that queue resource;
- a failure queue for each schedule (EventBridge's dead letters and the function's async failures);
- API access logs, throttling and tracing; the functions' environment (secret names, base URL).

`python -m infra.aws.template dev out.json`. Deployed names come from `names.py` (the IAM policy
uses the same).
"""
from __future__ import annotations

import json
import sys
from typing import Any

from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig
from chalice.utils import to_cfn_resource_name

from chalicelib import gateway_responses
from chalicelib.event_sources import FAILURE_QUEUE_LOGICAL_ID, MAPPINGS, StreamMapping, reads_failure_queue
from chalicelib.store.tables import TABLES, TableSpec

from . import names

SCHEDULE_FAILURE_QUEUE_LOGICAL_ID = "ScheduleFailureQueue"
QUEUE_RETENTION_SECONDS = 14 * 24 * 3600  # SQS's maximum: time for ops to look and re-drive
API_FUNCTION = "APIHandler"  # Chalice's name for the function behind the REST API
ACCESS_LOG_FORMAT = json.dumps({
    "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "time": "$context.requestTime",
    "method": "$context.httpMethod", "path": "$context.resourcePath", "status": "$context.status",
    "latencyMs": "$context.responseLatency", "bytes": "$context.responseLength",
}, separators=(",", ":"))


def table_logical_id(logical: str) -> str:
    return f"{to_cfn_resource_name(logical)}Table"


def table_resource(stage: str, spec: TableSpec) -> dict[str, Any]:
    """CloudFormation's shape of `spec.create_request` (boto3's): translated, not copied."""
    request = spec.create_request(names.table_name(stage, spec.logical))
    properties: dict[str, Any] = {
        key: request[key]
        for key in ("TableName", "BillingMode", "AttributeDefinitions", "KeySchema",
                    "GlobalSecondaryIndexes", "LocalSecondaryIndexes")
        if key in request
    }
    if spec.stream_view:  # CloudFormation takes the view type only (no StreamEnabled)
        properties["StreamSpecification"] = {"StreamViewType": spec.stream_view}
    if spec.ttl_attribute:
        properties["TimeToLiveSpecification"] = {"AttributeName": spec.ttl_attribute, "Enabled": True}
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["SSESpecification"] = {"SSEEnabled": True}
    resource: dict[str, Any] = {"Type": "AWS::DynamoDB::Table", "Properties": properties}
    if stage == "prod":
        properties["DeletionProtectionEnabled"] = True
        resource["DeletionPolicy"] = resource["UpdateReplacePolicy"] = "Retain"
    else:
        resource["DeletionPolicy"] = resource["UpdateReplacePolicy"] = "Delete"
    return resource


def queue_resource(name: str) -> dict[str, Any]:
    return {"Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": name, "MessageRetentionPeriod": QUEUE_RETENTION_SECONDS,
                           "SqsManagedSseEnabled": True},
            # cfn-lint-serverless ES6000 asks every queue for a RedrivePolicy: these queues are the
            # dead letters themselves; a further queue would only hide records from ops' re-drive.
            "Metadata": {"cfn-lint": {"config": {"ignore_checks": ["ES6000"]}}}}


def stream_event_properties(mapping: StreamMapping) -> dict[str, Any]:
    """The event source mapping of one stream function, every field from `MAPPINGS`."""
    properties: dict[str, Any] = {
        "Stream": {"Fn::GetAtt": [table_logical_id(mapping.table), "StreamArn"]},
        "BatchSize": mapping.batch_size,
        "StartingPosition": mapping.starting_position,
        "MaximumBatchingWindowInSeconds": mapping.maximum_batching_window_seconds,
        "BisectBatchOnFunctionError": mapping.bisect_batch_on_error,
        "MaximumRetryAttempts": mapping.maximum_retry_attempts,
        "MaximumRecordAgeInSeconds": mapping.maximum_record_age_seconds,
        "ParallelizationFactor": mapping.parallelization_factor,
        "DestinationConfig": {"OnFailure": {"Type": "SQS",
                                            "Destination": {"Fn::GetAtt": [FAILURE_QUEUE_LOGICAL_ID, "Arn"]}}},
    }
    if mapping.report_batch_item_failures:
        properties["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
    if mapping.tumbling_window_seconds:
        properties["TumblingWindowInSeconds"] = mapping.tumbling_window_seconds
    return properties


def _event(function: str, suffix: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The merge shape Chalice's SAM output has: Resources.<Fn>.Properties.Events.<Fn><Suffix>."""
    event_id = to_cfn_resource_name(f"{function}-{suffix}")
    return {"Properties": {"Events": {event_id: {"Properties": properties}}}}


def _merge(target: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


def function_resources(app: Any) -> dict[str, dict[str, Any]]:
    """Per Lambda function (by logical id): what the merge adds to its event sources."""
    functions: dict[str, dict[str, Any]] = {}
    stream_functions = set()
    for source in app.event_sources:
        fn = to_cfn_resource_name(source.name)
        extra: dict[str, Any] = {}
        if isinstance(source, DynamoDBEventConfig):
            if source.name not in MAPPINGS:
                raise ValueError(f"stream function {source.name!r} has no entry in event_sources.MAPPINGS")
            stream_functions.add(source.name)
            extra = _event(source.name, "dynamodb-event-source", stream_event_properties(MAPPINGS[source.name]))
        elif isinstance(source, SQSEventConfig) and reads_failure_queue(source):
            extra = _event(source.name, "sqs-event-source",
                           {"Queue": {"Fn::GetAtt": [FAILURE_QUEUE_LOGICAL_ID, "Arn"]}})
        elif isinstance(source, ScheduledEventConfig):
            queue_arn = {"Fn::GetAtt": [SCHEDULE_FAILURE_QUEUE_LOGICAL_ID, "Arn"]}
            extra = _event(source.name, "event", {"DeadLetterConfig": {"Arn": queue_arn},
                                                  "RetryPolicy": {"MaximumRetryAttempts": 2}})
            extra["Properties"]["EventInvokeConfig"] = {
                "MaximumRetryAttempts": 2,
                "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": queue_arn}},
            }
        _merge(functions.setdefault(fn, {}), extra)
    missing = set(MAPPINGS) - stream_functions
    if missing:
        raise ValueError(f"MAPPINGS names functions the app does not register: {sorted(missing)}")
    if app.routes:
        functions.setdefault(API_FUNCTION, {})
    return functions


def environment(stage: str) -> dict[str, Any]:
    return {
        "STAGE": stage,
        "TABLE_PREFIX": names.table_prefix(stage),
        "PUBLIC_BASE_URL": {"Ref": "PublicBaseUrl"},
        "JWT_SECRET_NAME": {"Ref": "JwtSecretName"},
        "WECHAT_APP_ID": {"Ref": "WechatAppId"},
        "WECHAT_APP_SECRET_NAME": {"Ref": "WechatSecretName"},
        "DEFAULT_LANDING_URL": {"Ref": "DefaultLandingUrl"},
        "MINI_PROGRAM_LINK": {"Ref": "MiniProgramLink"},
        "POSTER_IMAGE_HOSTS": {"Ref": "PosterImageHosts"},
    }


def parameters(stage: str) -> dict[str, Any]:
    secrets = names.secret_prefix(stage)
    secret_pattern = "^" + secrets.replace("/", "\\/") + "[A-Za-z0-9/_+=.@-]+$"
    return {
        "PublicBaseUrl": {"Type": "String", "Default": "",
                          "AllowedPattern": "^$|^https://[^/]+(/.*)?[^/]$",
                          "Description": "Where share links point, e.g. https://ref.brand.cn "
                                         "(empty: the URL the API was called on)"},
        "JwtSecretName": {"Type": "String", "Default": f"{secrets}jwt", "AllowedPattern": secret_pattern,
                          "Description": f"Secrets Manager secret holding the JWT signing secret (under {secrets})"},
        "WechatAppId": {"Type": "String", "Default": "", "Description": "WeChat mini-program app id"},
        "WechatSecretName": {"Type": "String", "Default": f"{secrets}wechat", "AllowedPattern": secret_pattern,
                             "Description": f"Secrets Manager secret holding the WeChat app secret (under {secrets})"},
        # No default: without it an unknown or ended code would send people to a placeholder shop.
        "DefaultLandingUrl": {"Type": "String", "AllowedPattern": "^https://[^/\\s]+(/\\S*)?$",
                              "Description": "Where a link with an unknown or ended code goes, e.g. "
                                             "https://shop.brand.cn/welcome"},
        "MiniProgramLink": {"Type": "String", "Default": "",
                            "AllowedPattern": "^$|^weixin://dl/business/\\?\\S+$|^https://\\S+$",
                            "Description": "The brand's mini-program (weixin://dl/business/?appid=...&path=... "
                                           "or an https URL link) for the hosted landing page; empty: none"},
        "PosterImageHosts": {"Type": "String", "Default": "", "AllowedPattern": "^[A-Za-z0-9.,\\s-]*$",
                             "Description": "Hosts (comma-separated) poster background images may come "
                                            "from besides each campaign's landing host, e.g. cdn.brand.cn"},
        "ApiThrottleRateLimit": {"Type": "Number", "Default": 500, "MinValue": 1,
                                 "Description": "Steady requests per second across the API"},
        "ApiThrottleBurstLimit": {"Type": "Number", "Default": 1000, "MinValue": 1,
                                  "Description": "Burst requests across the API"},
    }


def api_resources(log_retention_days: int) -> dict[str, Any]:
    """Access logs (API Gateway needs its account-wide CloudWatch role for them), throttling,
    tracing."""
    return {
        "ApiAccessLogs": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": "Delete",
                          "UpdateReplacePolicy": "Delete",
                          "Properties": {"RetentionInDays": log_retention_days}},
        "ApiGatewayCloudWatchRole": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "sts:AssumeRole"}]},
            "ManagedPolicyArns": [
                {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}],
        }},
        "ApiGatewayAccount": {"Type": "AWS::ApiGateway::Account",
                              "Properties": {"CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}}},
        "RestAPI": {"DependsOn": ["ApiGatewayAccount"], "Properties": {
            "TracingEnabled": True,
            "AccessLogSetting": {"DestinationArn": {"Fn::GetAtt": ["ApiAccessLogs", "Arn"]},
                                 "Format": ACCESS_LOG_FORMAT},
            "MethodSettings": [{"ResourcePath": "/*", "HttpMethod": "*", "MetricsEnabled": True,
                                "ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
                                "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"}}],
        }},
    }


def build(stage: str, app: Any) -> dict[str, Any]:
    log_retention = names.chalice_config()["stages"][stage].get("log_retention_in_days", 14)
    resources: dict[str, Any] = {
        table_logical_id(spec.logical): table_resource(stage, spec) for spec in TABLES.values()
    }
    resources[FAILURE_QUEUE_LOGICAL_ID] = queue_resource(names.stream_failure_queue(stage))
    resources[SCHEDULE_FAILURE_QUEUE_LOGICAL_ID] = queue_resource(names.schedule_failure_queue(stage))
    resources["ScheduleFailureQueuePolicy"] = {"Type": "AWS::SQS::QueuePolicy", "Properties": {
        "Queues": [{"Ref": SCHEDULE_FAILURE_QUEUE_LOGICAL_ID}],
        "PolicyDocument": {"Version": "2012-10-17", "Statement": [{  # EventBridge's dead letters
            "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": {"Fn::GetAtt": [SCHEDULE_FAILURE_QUEUE_LOGICAL_ID, "Arn"]},
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}]},
    }}
    for fn, extra in function_resources(app).items():
        _merge(extra, {"Properties": {"Environment": {"Variables": environment(stage)}}})
        resources[fn] = extra
    if app.routes:
        _merge(resources, api_resources(log_retention))
        _merge(resources, gateway_responses.cloudformation_resources())  # unknown paths: JSON 404
        # Chalice names the API function's log group after `${ApiHandler}`, a resource that does
        # not exist (the function is `APIHandler`): point it at the real one.
        resources["ApiHandlerLogGroup"] = {"Properties": {
            "LogGroupName": {"Fn::Sub": "/aws/lambda/${%s}" % API_FUNCTION}}}
    outputs = {f"{table_logical_id(s.logical)}Name": {"Value": {"Ref": table_logical_id(s.logical)}}
               for s in TABLES.values()}
    outputs["StreamFailureQueueUrl"] = {"Value": {"Ref": FAILURE_QUEUE_LOGICAL_ID}}
    outputs["ScheduleFailureQueueUrl"] = {"Value": {"Ref": SCHEDULE_FAILURE_QUEUE_LOGICAL_ID}}
    return {"Parameters": parameters(stage), "Resources": resources, "Outputs": outputs}


if __name__ == "__main__":
    from app import app as chalice_app

    stage_name, target = sys.argv[1], sys.argv[2]
    with open(target, "w") as handle:
        json.dump(build(stage_name, chalice_app), handle, indent=1)
    print(f"wrote {target}")
