"""The assistant's tools: arguments and results built from the customer's persona.

Each builder returns (arguments, result) where values may be `Pii`, and writes the facts an
answer needs (balance, ticket id...) into `slots`. Results are dicts or lists of dicts, the
shapes that break naive redaction (Presidio's dict analyzer crashes on lists of dicts).
"""

from __future__ import annotations

import random
from typing import Any, Callable

from evalflow.simulator import catalog
from evalflow.simulator.personal_data import (
    CREDIT_CARD,
    IBAN_CODE,
    PERSON,
    Persona,
    card_number,
    full_name,
    iban,
    person_name,
)
from evalflow.simulator.tracked import Pii, render

Builder = Callable[[random.Random, Persona, dict[str, Any]], tuple[dict, Any]]

_CURRENCY_SYMBOL = {"USD": "$", "GBP": "£", "EUR": "€", "INR": "₹", "AED": "AED ", "NGN": "₦",
                    "CNY": "¥"}
_HOME_CURRENCY = {"US": "USD", "GB": "GBP", "DE": "EUR", "ES": "EUR", "FR": "EUR", "IN": "INR",
                  "AE": "AED", "NG": "NGN", "CN": "CNY"}
_RATES = {"EUR": 0.9213, "GBP": 0.7902, "JPY": 149.62, "INR": 83.41, "MXN": 17.12,
          "AED": 3.6725, "NGN": 1540.0, "CNY": 7.243}


def money(amount: float, currency: str) -> str:
    return f"{_CURRENCY_SYMBOL.get(currency, currency + ' ')}{amount:,.2f}"


def _lookup_account(rng, persona, slots):
    currency = _HOME_CURRENCY[persona.country]
    balance = round(rng.lognormvariate(7.2, 1.1), 2)
    slots["balance"] = money(balance, currency)
    slots["holder"] = persona.pii("name")
    args = {"account_id": persona.pii("account")}
    result = {
        "account_id": persona.pii("account"),
        "holder_name": persona.pii("name"),
        "email": persona.pii("email"),
        "phone": persona.pii("phone"),
        "address": persona.pii("address"),
        "status": "active",
        "available_balance": balance,
        "currency": currency,
    }
    return args, result


def _list_transactions(rng, persona, slots):
    currency = _HOME_CURRENCY[persona.country]
    rows = []
    for i in range(rng.randint(2, 5)):
        rows.append({
            "date": f"2026-{rng.choice(('09', '10'))}-{rng.randint(1, 28):02d}",
            "merchant": rng.choice(catalog.MERCHANTS),
            "amount": round(rng.lognormvariate(3.5, 1.0), 2),
            "currency": currency,
            "status": "pending" if i == 0 and rng.random() < 0.5 else "posted",
        })
    rows[0]["merchant"] = slots["merchant"]
    if rng.random() < 0.5:  # a person-to-person payment: someone else's name and IBAN
        first, last, origin = person_name(rng)
        rows.append({
            "date": f"2026-09-{rng.randint(1, 28):02d}",
            "merchant": render("Instant transfer to {who}", {"who": Pii(full_name(first, last, origin), PERSON)}),
            "amount": round(rng.lognormvariate(4.0, 0.9), 2),
            "currency": currency,
            "status": "posted",
            "counterparty_iban": Pii(iban(rng, rng.choice(("GB", "DE", "ES", "FR"))), IBAN_CODE),
        })
    slots["txn_merchant"] = rows[0]["merchant"]
    slots["txn_amount"] = money(rows[0]["amount"], currency)
    return {"account_id": persona.pii("account"), "days": 30}, rows


def _get_order_status(rng, persona, slots):
    status = rng.choice(("shipped", "in transit", "delivered", "processing", "return received"))
    eta = f"2026-10-{rng.randint(2, 28):02d}"
    slots["order_status"] = status
    slots["eta"] = eta
    result = {
        "order_id": persona.pii("order"),
        "item": slots["item"],
        "status": status,
        "carrier": rng.choice(("UPS", "DHL", "Royal Mail", "FedEx")),
        "tracking_number": f"1Z{rng.randint(10**9, 10**10 - 1)}",
        "eta": eta,
        "ship_to": {"name": persona.pii("name"), "address": persona.pii("address")},
    }
    return {"order_id": persona.pii("order")}, result


def _freeze_card(rng, persona, slots):
    args = {"card_number": persona.pii("card"), "reason": rng.choice(("lost", "stolen"))}
    result = {
        "card": f"**** {slots['last4']}",
        "status": "frozen",
        "replacement_order_id": persona.pii("order"),
    }
    return args, result


def _create_ticket(rng, persona, slots):
    ticket = f"TCK-{rng.randint(100000, 999999)}"
    slots["ticket"] = ticket
    description = render("Customer {holder} ({account}) contacted support: {summary}", {
        "holder": persona.pii("name"), "account": persona.pii("account"),
        "summary": slots.get("summary", "see conversation"),
    })
    args = {
        "subject": slots.get("intent_label", "Customer request"),
        "customer_email": persona.pii("email"),
        "priority": rng.choice(("low", "normal", "normal", "high")),
        "description": description,
    }
    return args, {"ticket_id": ticket, "status": "open", "queue": rng.choice(("cards", "payments", "general", "complaints"))}


def _initiate_transfer(rng, persona, slots):
    transfer_id = f"TRF-{rng.randint(10**7, 10**8 - 1)}"
    slots["transfer_id"] = transfer_id
    args = {
        "from_account": persona.pii("account"),
        "to_iban": slots["iban"],
        "beneficiary_name": slots["other_name"],
        "amount": slots["amount_value"],
        "currency": _HOME_CURRENCY[persona.country],
    }
    result = {"transfer_id": transfer_id, "status": "scheduled",
              "estimated_arrival": f"2026-10-{rng.randint(2, 28):02d}"}
    return args, result


def _get_exchange_rate(rng, persona, slots):
    quote = slots["currency"]
    rate = round(_RATES[quote] * rng.uniform(0.99, 1.01), 4)
    converted = round(slots["amount_value"] * rate, 2)
    slots["rate"] = f"1 USD = {rate} {quote}"
    slots["converted"] = f"{converted:,.2f} {quote}"
    return ({"base": "USD", "quote": quote, "amount": slots["amount_value"]},
            {"rate": rate, "converted": converted, "as_of": "2026-10-01T00:00:00Z"})


def _update_contact_details(rng, persona, slots):
    field = slots.get("contact_field", "address")
    new_value = slots[{"address": "new_address", "phone": "new_phone", "email": "new_email"}[field]]
    old = persona.pii(field)
    args = {"account_id": persona.pii("account"), "field": field, "new_value": new_value}
    return args, {"updated": True, "field": field, "previous_value": old, "new_value": new_value}


def _send_verification_code(rng, persona, slots):
    destination = persona.pii("email") if rng.random() < 0.3 else persona.pii("phone")
    return {"destination": destination}, {"sent": True, "channel": "email" if "@" in destination.value else "sms", "expires_in_s": 600}


def _send_reset_link(rng, persona, slots):
    return {"email": persona.pii("email")}, {"sent": True, "expires_in_s": 1800}


def _find_branch(rng, persona, slots):
    branches = [{"branch": b.split(",")[0], "address": b.split(",")[1].split(" (")[0].strip(),
                 "hours": "Mon-Fri 09:00-17:00"} for b in catalog.BRANCHES]
    slots["branch"] = catalog.BRANCHES[rng.randrange(len(catalog.BRANCHES))]
    return {"city": slots["city"]}, branches


def _schedule_callback(rng, persona, slots):
    callback = f"CB-{rng.randint(10000, 99999)}, {rng.choice(('tomorrow 9-12', 'today 14-17', 'Monday 10-13'))}"
    slots["callback"] = callback
    args = {"name": persona.pii("name"), "phone": persona.pii("phone"), "window": callback.split(", ")[1]}
    return args, {"callback_id": callback.split(",")[0], "status": "scheduled"}


def _create_virtual_card(rng, persona, slots):
    number = card_number(rng)
    slots["vcard"] = Pii(number, CREDIT_CARD)
    return ({"account_id": persona.pii("account")},
            {"card_number": Pii(number, CREDIT_CARD), "expiry": f"{rng.randint(1, 12):02d}/{rng.randint(28, 31)}",
             "status": "active"})


def _check_fraud_alert(rng, persona, slots):
    currency = _HOME_CURRENCY[persona.country]
    amount = round(rng.lognormvariate(4.5, 0.8), 2)
    slots["txn_merchant"] = slots["merchant"]
    slots["txn_amount"] = money(amount, currency)
    alerts = [{"alert_id": f"FA-{rng.randint(1000, 9999)}", "merchant": slots["merchant"],
               "amount": amount, "currency": currency, "status": "awaiting_customer"}]
    return {"account_id": persona.pii("account")}, alerts


BUILDERS: dict[str, Builder] = {
    "lookup_account": _lookup_account,
    "list_transactions": _list_transactions,
    "get_order_status": _get_order_status,
    "freeze_card": _freeze_card,
    "create_ticket": _create_ticket,
    "initiate_transfer": _initiate_transfer,
    "get_exchange_rate": _get_exchange_rate,
    "update_contact_details": _update_contact_details,
    "send_verification_code": _send_verification_code,
    "send_reset_link": _send_reset_link,
    "find_branch": _find_branch,
    "schedule_callback": _schedule_callback,
    "create_virtual_card": _create_virtual_card,
    "check_fraud_alert": _check_fraud_alert,
}

# Placeholder values so an answer template never fails when a tool call errored out.
DEFAULT_TOOL_SLOTS = {
    "balance": "unavailable", "txn_merchant": "the merchant", "txn_amount": "the amount",
    "order_status": "unknown", "eta": "soon", "ticket": "pending", "transfer_id": "pending",
    "rate": "unavailable", "converted": "unavailable", "vcard": "pending", "callback": "pending",
    "branch": catalog.BRANCHES[0],
}

TOOL_ERRORS = (
    {"error": "upstream service unavailable", "status": 503},
    {"error": "timeout after 10s", "status": 504},
    {"error": "record not found", "status": 404},
)
