"""DynamoDB answers parsed without walking the model for every attribute value.

botocore parses a JSON answer by its shape: each attribute value is a structure of ten
optional members, each looked up and dispatched in turn, so an item of 30 attributes costs
~300 shape visits: 0.22 ms of CPU per item here, 56 ms per GetRecords of 100 records (0.07 and
26 ms this way), some 15 ms of a purchase's ~185 ms of stream CPU (bench/streamcpu.py).
On the wire an attribute value is already what botocore returns, except binary (base64 text
→ bytes), so maps of attribute values are copied as they are, binaries decoded. Everything
else (keys, capacities, errors, cancellation reasons) goes through botocore's own parser.

`install(client)` swaps the parser of one botocore client (DynamoDB or DynamoDB Streams);
installing twice is harmless.
"""
from __future__ import annotations

from typing import Any

from botocore import parsers

ATTRIBUTE_VALUE = "AttributeValue"


class FastAttributeValueParser(parsers.JSONParser):
    def _handle_map(self, shape: Any, value: Any) -> Any:
        if shape.value.name == ATTRIBUTE_VALUE and value is not None:
            return {key: self._attribute_value(v) for key, v in value.items()}
        return super()._handle_map(shape, value)

    def _handle_list(self, shape: Any, value: Any) -> Any:
        if shape.member.name == ATTRIBUTE_VALUE and value is not None:
            return [self._attribute_value(v) for v in value]
        return super()._handle_list(shape, value)

    def _handle_structure(self, shape: Any, value: Any) -> Any:
        if shape.name == ATTRIBUTE_VALUE and value is not None:
            return self._attribute_value(value)
        return super()._handle_structure(shape, value)

    def _attribute_value(self, value: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for kind, v in value.items():
            if kind == "M":
                v = {key: self._attribute_value(x) for key, x in v.items()}
            elif kind == "L":
                v = [self._attribute_value(x) for x in v]
            elif kind == "B":
                v = self._blob_parser(v)
            elif kind == "BS":
                v = [self._blob_parser(x) for x in v]
            elif v is None:
                continue  # botocore drops members sent as null
            out[kind] = v
        return out


class _Factory(parsers.ResponseParserFactory):
    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "json":
            return FastAttributeValueParser(**self._defaults)
        return super().create_parser(protocol_name)


def install(client: Any) -> Any:
    """Use the fast parser for `client`'s answers (a botocore client); returns the client."""
    endpoint = getattr(client, "_endpoint", None)
    factory = getattr(endpoint, "_response_parser_factory", None)
    if factory is not None and not isinstance(factory, _Factory):
        fast = _Factory()
        fast._defaults.update(factory._defaults)
        endpoint._response_parser_factory = fast
    return client
