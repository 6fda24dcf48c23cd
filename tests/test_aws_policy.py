"""The deployed IAM policy stays in step with the table specs."""
import json
from pathlib import Path

from infra.aws.policy import policy

ROOT = Path(__file__).resolve().parents[1]


def test_committed_policies_match_the_table_specs():
    for stage in ("dev", "prod"):
        committed = json.loads((ROOT / ".chalice" / f"policy-{stage}.json").read_text())
        assert committed == policy(stage), f"run: python -m infra.aws.policy {stage}"


def test_policy_allows_stream_reads_and_transactions_on_every_table():
    statements = policy("prod")["Statement"]
    actions = {a for s in statements for a in s["Action"]}
    assert {"dynamodb:GetRecords", "dynamodb:ConditionCheckItem", "dynamodb:UpdateItem"} <= actions
    resources = {r for s in statements for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])}
    assert "arn:aws:dynamodb:*:*:table/referral-prod-main/stream/*" in resources
    assert "dynamodb:Scan" not in actions  # no request path or sweep scans a table
