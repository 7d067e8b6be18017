"""Northwind Bank's knowledge base, in two versions.

Each chunk states one checkable fact. The answer for an intent quotes the fact of the chunk it
retrieved; a "contradicts_context" fault quotes `wrong` instead, so a groundedness check has a
real contradiction to find. kb-v2 re-ids every chunk and changes some facts (a policy update),
which is the knowledge-base change the drift reports should see.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    topic: str
    index: int  # 1-based, the "#N" in the doc id
    template: str  # contains "{fact}"
    fact: str
    wrong: str
    fact_v2: str | None = None  # set where kb-v2 changed the policy

    def doc_id(self, version: str) -> str:
        return f"{version}/{self.topic}#{self.index}"

    def fact_for(self, version: str) -> str:
        return self.fact_v2 if version == "kb-v2" and self.fact_v2 else self.fact

    def text(self, version: str) -> str:
        return self.template.format(fact=self.fact_for(version))


_RAW: dict[str, list[tuple]] = {
    "account-basics": [
        ("Your available balance excludes pending card authorisations, which usually settle within {fact}.",
         "3 business days", "24 hours"),
        ("Balances shown in the app refresh in real time; the ledger balance is updated {fact}.",
         "overnight", "once a month"),
    ],
    "card-security": [
        ("If your card is lost or stolen, freeze it in the app or ask support. A replacement card arrives within {fact}.",
         "5-7 business days", "24 hours", "3-5 business days"),
        ("Replacement cards for lost or stolen cards cost {fact}.", "$5", "$25",
         "nothing (free since October 2026)"),
    ],
    "disputes": [
        ("Card transactions can be disputed within {fact} of the statement date.", "60 days",
         "7 days", "120 days"),
        ("While a dispute is investigated, a provisional credit is issued within {fact}.",
         "10 business days", "1 hour"),
    ],
    "declines": [
        ("Cards are declined when the balance is insufficient, the card is frozen, or a fraud check is triggered. Fraud holds clear within {fact} of verification.",
         "15 minutes", "48 hours"),
        ("Online purchases can also be declined if the billing address does not match; update it and retry after {fact}.",
         "10 minutes", "3 days"),
    ],
    "transfers": [
        ("Domestic transfers sent before {fact} Eastern Time on a business day arrive the same day.",
         "5:00 pm", "11:00 pm", "6:00 pm"),
        ("The daily transfer limit for personal accounts is {fact}.", "$10,000", "$100,000",
         "$15,000"),
    ],
    "password-reset": [
        ("To reset your password, tap 'Forgot password' on the login screen. Reset links expire after {fact}.",
         "30 minutes", "7 days"),
    ],
    "refund-policy": [
        ("Purchases in the Northwind Rewards Store can be returned within {fact} of delivery for a full refund.",
         "30 days", "90 days", "45 days"),
        ("Refunds are credited to the original payment method within {fact}.", "5 business days",
         "the same day"),
    ],
    "rewards-store": [
        ("Rewards Store orders ship within {fact} and include tracking.", "2 business days",
         "the same day"),
    ],
    "app-support": [
        ("If the app shows error NW-401, sign out, update to the latest version and sign in again. Sessions expire after {fact} of inactivity.",
         "15 minutes", "24 hours"),
        ("The Northwind app supports iOS 16 and Android 10 or later; older versions stop working after {fact}.",
         "31 December 2026", "next week"),
    ],
    "address-change": [
        ("Address changes take effect within {fact}; cards already in the mail are not redirected.",
         "1 business day", "2 weeks"),
    ],
    "fees": [
        ("The monthly maintenance fee of {fact} is waived with a minimum daily balance of $1,500.",
         "$12", "$2"),
    ],
    "overdraft": [
        ("Overdraft fees are {fact} per item, with a maximum of 3 fees per day.", "$35", "$5",
         "$15"),
        ("No overdraft fee is charged if the account is overdrawn by {fact} or less.", "$50",
         "$500"),
    ],
    "international-wires": [
        ("International wires cost {fact} and usually arrive within 1-3 business days.", "$25",
         "$2", "$30"),
        ("Wires to IBAN accounts need the beneficiary's full name and IBAN; the cut-off is {fact}.",
         "3:00 pm ET", "midnight"),
    ],
    "credit-limit": [
        ("Credit limit increase requests are reviewed within {fact} and use a soft credit check.",
         "2 business days", "a few seconds"),
    ],
    "direct-deposit": [
        ("Direct deposits are available up to {fact} early when your employer submits payroll early.",
         "2 days", "2 weeks"),
    ],
    "fx": [
        ("Card purchases in a foreign currency carry a foreign transaction fee of {fact}.", "3%",
         "0%"),
        ("Exchange rates are set by the card network on the day the purchase {fact}.", "settles",
         "was first viewed"),
    ],
    "pin": [
        ("You can change your PIN at any Northwind ATM or in the app; the new PIN works {fact}.",
         "immediately", "after 7 days"),
    ],
    "two-factor": [
        ("One-time passcodes are valid for {fact}.", "10 minutes", "24 hours"),
    ],
    "statements": [
        ("Statements for the last {fact} can be downloaded as PDF in the app.", "7 years",
         "3 months"),
    ],
    "rewards": [
        ("Rewards points are worth {fact} each when redeemed for statement credit.", "1 cent",
         "10 cents"),
    ],
    "atm": [
        ("If an ATM did not dispense cash, the amount is usually reversed within {fact}.",
         "3 business days", "30 days"),
    ],
    "deposits": [
        ("Mobile cheque deposits submitted before {fact} are credited the next business day.",
         "9:00 pm ET", "noon"),
    ],
    "contact-details": [
        ("Changing your phone number or email requires a verification code sent to {fact}.",
         "both the old and the new contact", "no one"),
    ],
    "savings": [
        ("The High-Yield Savings account currently pays {fact} APY.", "4.10%", "9.50%", "3.85%"),
        ("Savings accounts can be opened online in about {fact}.", "5 minutes", "3 weeks"),
    ],
    "fraud": [
        ("Northwind will never ask for your full card number, PIN or one-time passcode. Fraud alerts are sent by text from {fact}.",
         "short code 62789", "a personal mobile number"),
        ("If you did not recognise a transaction, we block the card and refund confirmed fraud within {fact}.",
         "10 business days", "1 hour"),
    ],
    "account-restrictions": [
        ("Accounts may be restricted during a security review, which normally completes within {fact}.",
         "48 hours", "30 days"),
    ],
    "recurring-payments": [
        ("Recurring card payments can be cancelled up to {fact} before the scheduled date.",
         "1 business day", "1 minute"),
    ],
    "wallets": [
        ("Northwind cards work with Apple Pay and Google Pay; adding a card takes {fact}.",
         "a few minutes", "about a week"),
    ],
    "complaints": [
        ("Formal complaints receive a written response within {fact}.", "15 business days",
         "24 hours"),
    ],
    "closing": [
        ("Accounts with a zero balance can be closed online; closure completes within {fact}.",
         "2 business days", "1 hour"),
    ],
    "travel": [
        ("Travel notices are optional; you can add one in the app up to {fact} in advance.",
         "90 days", "2 years"),
    ],
    "branches": [
        ("Most branches are open {fact}.", "Monday to Friday, 9:00 am to 5:00 pm",
         "24 hours a day, every day"),
    ],
    "virtual-cards": [
        ("Virtual cards are created instantly in the app; you can hold up to {fact} active virtual cards.",
         "5", "50", "10"),
    ],
    "loans": [
        ("Personal loans range from $2,000 to $50,000 with terms of up to {fact}.", "60 months",
         "30 years"),
    ],
    "authorized-users": [
        ("Authorized users on a credit card must be at least {fact} years old.", "13", "21"),
    ],
    "mortgages": [
        ("Mortgage pre-approval decisions are usually issued within {fact}.", "3 business days",
         "10 minutes"),
    ],
    "student": [
        ("Student checking has no monthly fee until age {fact}.", "25", "30"),
    ],
    "business": [
        ("Business checking needs an EIN and formation documents; most accounts open in {fact}.",
         "about 10 minutes", "6 weeks"),
    ],
    "crypto": [
        ("Transfers to cryptocurrency exchanges are limited to {fact} per day.", "$2,500",
         "$250,000"),
    ],
    "privacy": [
        ("Requests to access or delete personal data are completed within {fact}.", "30 days",
         "1 year"),
    ],
    "stop-payment": [
        ("A stop payment on a cheque costs {fact} and lasts six months.", "$30", "$1"),
    ],
    "safe-deposit": [
        ("Safe deposit boxes start at {fact} per year at selected branches.", "$60", "$6"),
    ],
    "bereavement": [
        ("Our bereavement team freezes the account within {fact} of receiving a death certificate.",
         "2 business days", "a month"),
    ],
    "power-of-attorney": [
        ("A power of attorney document is reviewed by our legal team within {fact}.",
         "10 business days", "1 hour"),
    ],
    "scams": [
        ("If you sent money to a scammer, report it within {fact}; we contact the receiving bank to try to recover the funds.",
         "24 hours", "6 months"),
    ],
    "safety": [
        ("Account information is only shared with {fact}.", "the verified account holder",
         "anyone who provides an account number"),
        ("Cash transactions over {fact} are reported to the authorities as required by law.",
         "$10,000", "$50,000"),
    ],
}

CHUNKS: dict[str, tuple[Chunk, ...]] = {
    topic: tuple(
        Chunk(topic, i + 1, raw[0], raw[1], raw[2], raw[3] if len(raw) > 3 else None)
        for i, raw in enumerate(items)
    )
    for topic, items in _RAW.items()
}
TOPICS = tuple(CHUNKS)
CHANGED_IN_V2 = tuple(
    chunk.doc_id("kb-v2") for chunks in CHUNKS.values() for chunk in chunks if chunk.fact_v2
)
