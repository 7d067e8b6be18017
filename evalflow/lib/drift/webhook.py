"""Delivering alerts to a webhook: every alert row not yet delivered is POSTed as JSON to
EVALFLOW_ALERT_WEBHOOK_URL (a Slack/Teams/PagerDuty relay, or any HTTP endpoint), then marked
delivered. A failed post (network, non-2xx) marks nothing, so the next sensor tick sends the same
alerts again: delivery is at least once, and each alert carries a stable `alert_id` the receiver
can de-duplicate on.

The body: {"source": "evalflow", "alerts": [{alert_id, week_start, signal, baseline, severity,
value, threshold, detail, raised_at, delivered_at}]} (delivered_at is null: not delivered yet).
Alert details hold ids, hashes, shares and intent names, never trace text, so nothing redacted
leaves with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from evalflow.lib.common.settings import SettingError, Settings, text_setting

WEBHOOK_ENV = "EVALFLOW_ALERT_WEBHOOK_URL"
# At most this many alerts per post; the rest go on the next tick.
BATCH = 100
# A sensor tick must not hang on a busy warehouse or a slow receiver.
LOCK_WAIT_S = 5.0
TIMEOUT_S = 10.0


@dataclass
class Delivery:
    delivered: int = 0
    skipped: str | None = None  # why nothing was sent


def webhook_url() -> str | None:
    """EVALFLOW_ALERT_WEBHOOK_URL, checked (SettingError names the variable); None when unset."""
    url = text_setting(WEBHOOK_ENV)
    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise SettingError(f"{WEBHOOK_ENV} must start with http:// or https://, got a value that does not")
    # The messages never echo the URL: webhook URLs carry tokens.
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError when the port is not a number from 0 to 65535)
    except ValueError:
        raise SettingError(f"{WEBHOOK_ENV} is not a valid URL (its host or port cannot be read)") from None
    if not parts.hostname:
        raise SettingError(f"{WEBHOOK_ENV} names no host")
    return url


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, (date, datetime)) else v) for k, v in row.items()}


def deliver_pending(settings: Settings, url: str | None = None) -> Delivery:
    """Post the undelivered alerts to the webhook and mark them delivered (see the module doc)."""
    import httpx

    from evalflow.lib.common.clock import utcnow
    from evalflow.lib.common.warehouse import Warehouse, WarehouseLocked
    from evalflow.lib.drift.store import mark_delivered, undelivered_alerts

    url = url or webhook_url()
    if not url:
        return Delivery(skipped=f"{WEBHOOK_ENV} is not set")
    if not settings.warehouse_path.exists():
        return Delivery(skipped="no warehouse yet")
    store = Warehouse(settings.warehouse_path)
    try:
        with store.connect(read_only=True, wait_s=LOCK_WAIT_S) as con:
            pending = undelivered_alerts(con)
    except WarehouseLocked:
        return Delivery(skipped="the warehouse is busy (a run is writing); trying again next minute")
    if not pending:
        return Delivery(skipped="no undelivered alert")
    batch = [_jsonable(row) for row in pending[:BATCH]]
    try:
        with httpx.Client(timeout=TIMEOUT_S) as http:
            response = http.post(url, json={"source": "evalflow", "alerts": batch})
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return Delivery(skipped=f"the webhook could not be reached ({type(exc).__name__}); "
                                f"{len(pending)} alert(s) kept for the next try")
    if not response.is_success:
        return Delivery(skipped=f"the webhook answered HTTP {response.status_code}; "
                                f"{len(pending)} alert(s) kept for the next try")
    try:
        with store.connect(wait_s=LOCK_WAIT_S) as con:
            mark_delivered(con, [row["alert_id"] for row in batch], utcnow())
    except WarehouseLocked:
        # Sent but not marked: the next tick sends them again (at least once; alert_id de-duplicates).
        return Delivery(delivered=len(batch), skipped="sent; the warehouse was busy, so they are marked next time")
    return Delivery(delivered=len(batch))
