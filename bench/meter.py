"""Count DynamoDB calls and request units, from any botocore client in this process
(PynamoDB's included), by wrapping `BaseClient._make_api_call`.

- Every data-plane call gets `ReturnConsumedCapacity=TOTAL`; the reported `CapacityUnits` are
  summed as read (RRU) or write (WRU) units by operation.
- DynamoDB Local reports a multi-item TransactWriteItems wrongly (measured here: two 1 KB
  updates report 2.0 instead of 4.0; three 3 KB puts report 6.0 instead of 18.0 — it keeps one
  item's figure per table). With `model=True` the meter therefore also computes what DynamoDB
  bills, from the items themselves: it reads each written item before and after the call (on a
  separate, unmetered client) and applies DynamoDB's rules — 1 WRU per started KB of the
  larger image, the same again for every index entry written (index entry = item + 100 bytes,
  a key change writes two), twice that inside a transaction; a ConditionCheck as a
  transactional read (2 RRU per 4 KB). The model is checked against DynamoDB Local on every
  non-transactional write (`agreement`).
- Failed calls (a condition that did not hold, a cancelled transaction) report nothing;
  they are counted, and modelled as the write they attempted (DynamoDB bills them).
"""
from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.client import BaseClient

READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
DATA_PLANE = READS | WRITES
INDEX_KEYS = {"gsi1": ("gsi1pk", "gsi1sk"), "gsi2": ("gsi2pk", "gsi2sk"), "lsi1": ("pk", "lsi1sk")}
INDEX_OVERHEAD = 100


def tables_index_keys(prefix: str) -> dict[str, dict[str, tuple[str, str]]]:
    """Every table of the service (store/tables.py) with its indexes' key attributes, by its
    name under `prefix`: what a Meter bills index entries from. A new table is metered at once."""
    from chalicelib.store.tables import TABLES

    return {prefix + spec.logical: {i.name: (i.hash_key, i.range_key) for i in (*spec.indexes, *spec.local_indexes)}
            for spec in TABLES.values()}


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return _number_size(v)
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in v)
    if kind == "NS":
        return sum(_number_size(s) for s in v)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(x) + 1 for k, x in v.items())
    if kind == "L":
        return 3 + sum(value_size(x) + 1 for x in v)
    return 0


def item_size(item: dict | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def item_type(item: dict | None) -> str:
    """The stored item's type (its `type` attribute), else the prefix of its partition key."""
    if not item:
        return "?"
    if "type" in item and "S" in item["type"]:
        return item["type"]["S"]
    return item.get("pk", {}).get("S", "?").split("#", 1)[0]


def write_units(before: dict | None, after: dict | None, indexes: dict[str, tuple[str, str]]) -> int:
    """WRU of one standalone write turning `before` into `after` (None: absent)."""
    units = max(1, math.ceil(max(item_size(before), item_size(after)) / 1024))
    for keys in indexes.values():
        had = bool(before) and all(k in before for k in keys)
        has = bool(after) and all(k in after for k in keys)
        size_before = math.ceil((item_size(before) + INDEX_OVERHEAD) / 1024)
        size_after = math.ceil((item_size(after) + INDEX_OVERHEAD) / 1024)
        if had and has:
            if any(before[k] != after[k] for k in keys):
                units += size_before + size_after
            elif before != after:
                units += size_after
        elif had:
            units += size_before
        elif has:
            units += size_after
    return units


@dataclass
class Tally:
    calls: Counter = field(default_factory=Counter)
    failed: Counter = field(default_factory=Counter)
    rru: float = 0.0  # as DynamoDB Local reports
    wru: float = 0.0
    model_rru: float = 0.0  # as DynamoDB bills (see the module docstring)
    model_wru: float = 0.0
    wru_by_item: Counter = field(default_factory=Counter)  # model WRU by the written item's type

    def add(self, other: "Tally") -> None:
        self.wru_by_item.update(other.wru_by_item)
        self.calls.update(other.calls)
        self.failed.update(other.failed)
        self.rru += other.rru
        self.wru += other.wru
        self.model_rru += other.model_rru
        self.model_wru += other.model_wru

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


class Meter:
    def __init__(self, raw_client: Any, indexes_by_table: dict[str, dict[str, tuple[str, str]]]):
        self.raw = raw_client  # unmetered: the model's before/after reads
        self.indexes = indexes_by_table
        self.tallies: dict[str, Tally] = defaultdict(Tally)
        self.label: str | None = None
        self.model = False
        self.agreement = Counter()  # model vs DynamoDB Local on non-transactional writes
        self._local = threading.local()
        self._original = None

    @contextmanager
    def installed(self):
        meter = self
        original = self._original = BaseClient._make_api_call

        def metered(client, operation, params):
            if getattr(meter._local, "off", False) or meter.label is None \
                    or client.meta.service_model.service_name != "dynamodb" or operation not in DATA_PLANE:
                return original(client, operation, params)
            return meter._call(original, client, operation, params)

        BaseClient._make_api_call = metered
        try:
            yield self
        finally:
            BaseClient._make_api_call = original

    # -- one call ---------------------------------------------------------------------------
    def _unmetered_get(self, table: str, key: dict) -> dict | None:
        self._local.off = True
        try:
            return self.raw.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        finally:
            self._local.off = False

    def _targets(self, operation: str, params: dict) -> list[tuple[str, str, dict]]:
        """(kind, table, key) of every item a write touches."""
        def key_of(table: str, item: dict) -> dict:
            return {k: item[k] for k in ("pk", "sk") if k in item}

        if operation == "PutItem":
            return [("Put", params["TableName"], key_of(params["TableName"], params["Item"]))]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(operation[:-4], params["TableName"], params["Key"])]
        if operation == "TransactWriteItems":
            out = []
            for entry in params["TransactItems"]:
                (kind, body), = entry.items()
                key = key_of(body["TableName"], body["Item"]) if kind == "Put" else body["Key"]
                out.append((kind, body["TableName"], key))
            return out
        return []

    def _call(self, original, client, operation: str, params: dict):
        tally = self.tallies[self.label]
        params = dict(params)
        if params.get("ReturnConsumedCapacity") in (None, "NONE"):
            params["ReturnConsumedCapacity"] = "TOTAL"
        targets = self._targets(operation, params) if self.model else []
        before = [self._unmetered_get(t, k) for _, t, k in targets]
        try:
            response = original(client, operation, params)
        except Exception:
            tally.calls[operation] += 1
            tally.failed[operation] += 1
            if self.model and targets:
                factor = 2 if operation == "TransactWriteItems" else 1
                for (kind, table, _), image in zip(targets, before):
                    if kind == "ConditionCheck":
                        tally.model_rru += 2 * max(1, math.ceil(item_size(image) / 4096))
                    else:
                        tally.model_wru += factor * max(1, math.ceil(item_size(image) / 1024))
            raise
        tally.calls[operation] += 1
        reported = response.get("ConsumedCapacity")
        units = sum(c.get("CapacityUnits", 0) for c in reported) if isinstance(reported, list) else (
            (reported or {}).get("CapacityUnits", 0))
        if operation in READS:
            tally.rru += units
            tally.model_rru += self._read_model(operation, params, response, units)
        else:
            tally.wru += units
            if self.model:
                after = [self._unmetered_get(t, k) for _, t, k in targets]
                modelled = 0.0
                for (kind, table, _), b, a in zip(targets, before, after):
                    if kind == "ConditionCheck":
                        tally.model_rru += 2 * max(1, math.ceil(item_size(b) / 4096))
                        continue
                    units_one = write_units(b, a, self.indexes.get(table, {}))
                    units_one *= 2 if operation == "TransactWriteItems" else 1
                    modelled += units_one
                    tally.wru_by_item[item_type(a or b)] += units_one
                tally.model_wru += modelled
                if operation != "TransactWriteItems":
                    self.agreement["same" if math.isclose(modelled, units) else "different"] += 1
            else:
                tally.model_wru += units
        return response

    @staticmethod
    def _read_model(operation: str, params: dict, response: dict, reported: float) -> float:
        """Reads as reported, except what DynamoDB Local leaves out: a BatchGetItem key that
        finds nothing still costs the minimum (0.5 RRU, 1 if consistent), and so does a Query."""
        if operation == "BatchGetItem":
            missing = 0.0
            for table, request in params["RequestItems"].items():
                found = len(response.get("Responses", {}).get(table, []))
                unit = 1.0 if request.get("ConsistentRead") else 0.5
                missing += unit * max(0, len(request["Keys"]) - found)
            return reported + missing
        if operation == "Query" and reported == 0:
            return 1.0 if params.get("ConsistentRead") else 0.5
        return float(reported)


def to_float(value: Any) -> float:
    return float(value) if isinstance(value, (int, float, Decimal)) else 0.0
