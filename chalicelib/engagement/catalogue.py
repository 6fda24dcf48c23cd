"""The reward catalogue: items a member buys with available points.

Access patterns (main table):
- an item: GetItem pk=CATALOGUE, sk=ITEM#<item_id>
- the catalogue, by item id: Query pk=CATALOGUE, sk begins_with ITEM# (one partition: a brand's
  catalogue is tens to hundreds of items, read far more often than written)

A redemption spends the points and one unit of stock in ONE transaction with its ledger entry
(ledger.spend): the stock is decremented only while it is ≥ 1 and the price is the one the member
was shown, so the last unit goes to exactly one member and nobody pays a changed price.
"""
from __future__ import annotations

from typing import Any

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError

from ..core import clock
from ..core.errors import Conflict, NotFound
from ..core.pagination import PageQuery, page
from ..i18n import t
from ..insight import audit
from ..rewards import ledger
from ..store.base import MainItem, cancelled_by_condition, transaction

CATALOGUE_PK = "CATALOGUE"
PRICE_RETRIES = 3  # a price changed between the read and the redemption: read it again


class CatalogueItem(MainItem, discriminator="catalogue_item"):
    item_id = UnicodeAttribute()
    name = UnicodeAttribute()
    points = NumberAttribute()
    stock = NumberAttribute()
    active = BooleanAttribute(default=True)
    updated_at = UnicodeAttribute()

    @classmethod
    def key(cls, item_id: str) -> tuple[str, str]:
        return CATALOGUE_PK, f"ITEM#{item_id}"


def render(item: CatalogueItem) -> dict[str, Any]:
    return {"item_id": item.item_id, "name": item.name, "points": int(item.points), "stock": int(item.stock),
            "active": bool(item.active)}


def find(item_id: str) -> CatalogueItem | None:
    try:
        return CatalogueItem.get(*CatalogueItem.key(item_id), consistent_read=True)
    except CatalogueItem.DoesNotExist:
        return None


def get_or_404(item_id: str) -> CatalogueItem:
    item = find(item_id)
    if item is None:
        raise NotFound(t("no catalogue item {item_id!r}", item_id=item_id), code="item_not_found")
    return item


def create(item_id: str, name: str, points: int, stock: int, actor: str) -> dict[str, Any]:
    at = clock.now_iso()
    item = CatalogueItem(*CatalogueItem.key(item_id), item_id=item_id, name=name, points=points, stock=stock,
                         active=True, updated_at=at)
    try:
        with transaction() as tx:
            tx.save(item, condition=CatalogueItem.pk.does_not_exist())
            tx.save(audit.record(actor, "catalogue.create", f"catalogue:{item_id}",
                                 {"name": name, "points": points, "stock": stock}, at=at))
    except TransactWriteError as exc:
        if cancelled_by_condition(exc):  # the item exists
            raise Conflict(t("catalogue item {item_id!r} already exists; change it with PUT", item_id=item_id),
                           code="item_exists") from None
        raise
    return render(item)


def change(item_id: str, changes: dict[str, Any], actor: str) -> dict[str, Any]:
    """Set name, points, stock or active. Stock is set outright (a restock or a correction)."""
    item = get_or_404(item_id)
    if not changes:
        return render(item)
    at = clock.now_iso()
    actions = [getattr(CatalogueItem, name).set(value) for name, value in changes.items()]
    actions.append(CatalogueItem.updated_at.set(at))
    with transaction() as tx:
        tx.update(item, actions=actions, condition=CatalogueItem.pk.exists())
        tx.save(audit.record(actor, "catalogue.change", f"catalogue:{item_id}", changes, at=at))
    return render(get_or_404(item_id))


def list_items(page_query: PageQuery, active_only: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"hash_key": CATALOGUE_PK, "range_key_condition": CatalogueItem.sk.startswith("ITEM#")}
    if active_only:
        kwargs["filter_condition"] = CatalogueItem.active == True  # noqa: E712 (a condition, not a test)
    return page(CatalogueItem.query, page_query, "catalogue", render, **kwargs)


def redeem(member_id: str, redemption_id: str, item_id: str) -> tuple[Any, dict[str, Any]]:
    """Spend the item's points and one unit of its stock, atomically. 404 unknown or withdrawn
    item, 409 `out_of_stock`, 409 `insufficient_points`; a replay of the same redemption → 409
    `already_applied` (the idempotency layer answers true retries before this runs)."""
    for _ in range(PRICE_RETRIES):
        item = get_or_404(item_id)
        if not item.active:
            raise NotFound(t("catalogue item {item_id!r} is not offered any more", item_id=item_id),
                           code="item_not_found")
        if int(item.stock) < 1:
            raise Conflict(t("{item} is out of stock", item=item.name), code="out_of_stock")
        price = int(item.points)
        take_one = (item, [CatalogueItem.stock.add(-1)],
                    (CatalogueItem.stock >= 1) & (CatalogueItem.points == price) & (CatalogueItem.active == True))  # noqa: E712
        try:
            entry = ledger.spend(member_id, f"redemption.{redemption_id}", -price, f"redeemed for {item.name}",
                                 "redemption", extra_updates=[take_one])
        except ledger.ExtraConditionFailed:
            continue  # stock, price or offer changed since the read: judge again from what stands
        return entry, render(get_or_404(item_id))
    raise Conflict(t("{item_id!r} kept changing; try again", item_id=item_id), code="item_changed")
