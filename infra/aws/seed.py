"""Create a deployed stage's `default` campaign if it is missing (idempotent; `make deploy` runs it).

    STAGE=prod python -m infra.aws.seed      # with the operator's AWS credentials

The local runtime and the tests seed it themselves (`chalicelib.bootstrap`); on AWS the tables
come from the stack, so only the campaign is left to create.
"""
from __future__ import annotations

import sys

from chalicelib.campaigns.service import seed_default
from chalicelib.core.config import settings
from chalicelib.store.base import bind


def main() -> int:
    bind()
    created = seed_default()
    print(f"default campaign {'created' if created else 'already there'} in {settings().table_prefix}main")
    return 0


if __name__ == "__main__":
    sys.exit(main())
