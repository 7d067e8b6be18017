"""The Luhn checksum of card numbers: the card recognizer checks it, the simulator's fake cards
are made to pass it. No dependencies, so the simulator can import it without Presidio."""

from __future__ import annotations


def _luhn_sum(digits: str) -> int:
    """Sum of the digits from the right, every second one doubled (less 9 when over 9)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total


def luhn_valid(digits: str) -> bool:
    """Whether a string of ASCII digits only (no spaces or dashes) passes the Luhn check."""
    return _luhn_sum(digits) % 10 == 0


def luhn_valid_number(number: str) -> bool:
    """Whether a card number as written (with spaces, dashes or neither) passes the Luhn check:
    its digits, of which it needs at least one."""
    digits = "".join(c for c in number if c.isdigit())
    return bool(digits) and luhn_valid(digits)


def luhn_check_digit(partial: str) -> str:
    """The digit that, appended to `partial` (ASCII digits only), makes it pass the check."""
    return str(-_luhn_sum(partial + "0") % 10)
