"""What every importer gets: the call's id, time and reward switch, and a campaign cache."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..campaigns import service as campaigns


@dataclass
class Context:
    import_id: str
    now: str
    apply_rewards: bool
    _campaigns: dict[str, Any] = field(default_factory=dict)

    def campaign(self, campaign_id: str | None) -> Any:
        """The campaign as it stands now (None if unknown), read once per call."""
        key = campaign_id or "default"
        if key not in self._campaigns:
            self._campaigns[key] = campaigns.current(key)
        return self._campaigns[key]
