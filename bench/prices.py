"""Prices used for the cost figures: assumptions, written down with where they come from.

us-east-1, on-demand, no free tier, x86 Lambda. Looked up with the project's search tool on
the date in CHECKED (the pages themselves carry no date in what the tool returned).
"""
import json
from pathlib import Path

CHECKED = "2026-11-23"


def _configured_memory_mb() -> int:
    """The stage-wide `lambda_memory_size` the functions are deployed with."""
    config = json.loads((Path(__file__).resolve().parent.parent / ".chalice" / "config.json").read_text())
    return int(config.get("lambda_memory_size", 128))


DDB_WRU_USD = 0.625 / 1e6  # per write request unit
DDB_RRU_USD = 0.125 / 1e6  # per read request unit
LAMBDA_REQUEST_USD = 0.20 / 1e6
LAMBDA_GB_S_USD = 0.0000166667
LAMBDA_MEMORY_GB = _configured_memory_mb() / 1024  # what .chalice/config.json deploys (Chalice's default: 128)
APIGW_REST_REQUEST_USD = 3.50 / 1e6  # REST API (Chalice deploys one), first 333 M requests a month

SOURCES = [
    "DynamoDB on-demand: $0.625 per million write request units, $0.125 per million read request units "
    "(US East; airbyte.com/data-engineering-resources/dynamodb-pricing, which quotes AWS's page after the "
    "November 2024 on-demand price cut). A transactional write costs 2 WRU per KB, a transactional read 2 RRU "
    "per 4 KB (aws.amazon.com/dynamodb/pricing/provisioned, key terms).",
    "DynamoDB Streams: GetRecords calls made by a Lambda event source mapping are not charged (AWS's DynamoDB "
    "pricing page; not re-checked by search) — so stream reads cost nothing here; the handlers' own reads and "
    "writes are counted.",
    "Lambda: $0.20 per million requests, $0.0000166667 per GB-second on x86 "
    "(docs.aws.amazon.com/whitepapers/latest/how-aws-pricing-works/lambda.html; cloudchipr.com/blog/aws-lambda-pricing).",
    "API Gateway REST API: $3.50 per million requests (AWS's API Gateway pricing page; not re-checked by search), "
    "shown separately because the brief prices DynamoDB and Lambda only.",
]
