"""The one definition of every table: keys, indexes, stream and TTL.

The local runtime and the tests create tables from `TABLES` (`ensure_tables`), and the AWS
template is generated from the same specs (`infra/aws/template.py`). Access patterns are
named next to the index that serves them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.config import settings


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: str
    range_key: str
    range_type: str = "S"
    serves: str = ""


@dataclass(frozen=True)
class TableSpec:
    logical: str
    serves: str
    stream_view: str | None = None
    ttl_attribute: str | None = "expires_at"
    hash_key: str = "pk"
    range_key: str = "sk"
    indexes: tuple[Index, ...] = field(default_factory=tuple)
    local_indexes: tuple[Index, ...] = field(default_factory=tuple)

    def create_request(self, table_name: str) -> dict[str, Any]:
        attrs = {self.hash_key: "S", self.range_key: "S"}
        for index in self.indexes:
            attrs[index.hash_key] = "S"
            attrs[index.range_key] = index.range_type
        for index in self.local_indexes:
            attrs[index.range_key] = index.range_type
        request: dict[str, Any] = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": k, "AttributeType": t} for k, t in attrs.items()],
            "KeySchema": [
                {"AttributeName": self.hash_key, "KeyType": "HASH"},
                {"AttributeName": self.range_key, "KeyType": "RANGE"},
            ],
        }
        if self.indexes:
            request["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.hash_key, "KeyType": "HASH"},
                        {"AttributeName": index.range_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.indexes
            ]
        if self.local_indexes:
            request["LocalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": self.hash_key, "KeyType": "HASH"},
                        {"AttributeName": index.range_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in self.local_indexes
            ]
        if self.stream_view:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": self.stream_view}
        return request


MAIN = TableSpec(
    logical="main",
    serves="members, identities, codes, links, campaigns, orders, ledger, outbox, flags, audit, counters, "
           "reserved vanity words (one item); "
           "an advocate's conversions ranked in time (pk=M#<advocate>, sk=CONV#<converted_at>#<referee>, "
           "strongly consistent Query); engagement: check-ins, shares and assists, quizzes and attempts "
           "(engagement/models.py); red packets and their claims (PACKET#<id>); the reward catalogue (pk=CATALOGUE, sk=ITEM#<item_id>, one Query); "
           "a member's points lots by expiry day (pk=M#<member>, sk=LOT#<day>, points/models.py); "
           "a campaign's ledger entries by creation time, for exports (pk=LEDGERX#<campaign>#<month>#<shard>, "
           "sk=<created_at>#<member>#<entry>, stream-kept, exports/models.py); second-level "
           "downline counts (pk=DL2#<member>#<shard>, sk=COUNTS) and what each grandchild adds to them "
           "(pk=M#<grandchild>, sk=DL2; referrals/downline.py)",
    stream_view="NEW_AND_OLD_IMAGES",
    indexes=(
        Index("gsi1", "gsi1pk", "gsi1sk",
              serves="a referrer's downline (REF#<member>, by bind time); fraud flags by status; audit log; "
                     "a campaign's quizzes (QUIZZES#<campaign>, "
                     "newest first); a member's login identities (IDS#<member>, member 360); a member's codes "
                     "(CODES#<member>) and share links (LINKS#<member>): personal-data export and erasure"),
        Index("gsi2", "gsi2pk", "gsi2sk",
              serves="sweeps: pending ledger entries by release time; members by last activity; open red "
                     "packets by expiry (PACKETS_DUE, sparse: removed when settled); points lots by their next notice or "
                     "expiry (EXPIRE#<shard>, sparse: removed with the lot); fraud flags on a referrer's referees "
                     "(FLAGGED#<referrer>, newest first, member 360)"),
    ),
    local_indexes=(
        Index("lsi1", "pk", "lsi1sk", serves="a member's ledger by time (LEDGER#<created_at>#<entry>)"),
    ),
)

CLICKS = TableSpec(
    logical="clicks",
    serves="raw click events (one write per click); aggregated into counters by the stream",
    stream_view="NEW_IMAGE",
)

CONTROL = TableSpec(
    logical="control",
    serves="idempotency records (IDEM#<role>#<hash>), rate-limit windows, link quotas per member and day, "
           "revoked token ids, click counters (no stream: nothing downstream)",
)

BOARDS = TableSpec(
    logical="boards",
    serves="leaderboards (leaderboards/models.py): what each fact contributes (pk=LBF#<fact>), a member's "
           "score on a board (pk=LBS#<board>#<member>), members per score bucket (pk=LBH#<board>#<shard>). "
           "No stream: a score write wakes no handler (in `main` these were 36 of a converting purchase's 64 "
           "stream records)",
    indexes=(
        Index("gsi1", "gsi1pk", "gsi1sk",
              serves="a board's ranking (sparse: LB#<board>#<shard>, members scoring above 0, by score then member)"),
    ),
)

TABLES: dict[str, TableSpec] = {spec.logical: spec for spec in (MAIN, CLICKS, CONTROL, BOARDS)}


def ensure_tables(client: Any, prefix: str | None = None) -> dict[str, str]:
    """Create missing tables and switch on TTL. Idempotent. Returns logical → stream ARN."""
    prefix = settings().table_prefix if prefix is None else prefix
    existing: set[str] = set()
    for page in client.get_paginator("list_tables").paginate():
        existing.update(page["TableNames"])
    arns: dict[str, str] = {}
    for spec in TABLES.values():
        name = prefix + spec.logical
        if name not in existing:
            try:
                client.create_table(**spec.create_request(name))
            except client.exceptions.ResourceInUseException:
                pass  # created meanwhile: by a CreateTable botocore sent again after a timeout, or a peer
            client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
            if spec.ttl_attribute:
                client.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
                )
        if spec.stream_view:
            arns[spec.logical] = client.describe_table(TableName=name)["Table"]["LatestStreamArn"]
    return arns
