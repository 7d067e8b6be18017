"""Fake but realistic PII: names from several origins, national phone formats, Luhn-valid cards.

Nothing here comes from a real person. Lists are small on purpose; variety comes from mixing
origins, letter cases and formats, which is what trips up redaction in practice (measured:
Presidio misses all-caps and lowercase names and scores phone numbers at exactly 0.40).
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

from evalflow.lib.redact.luhn import luhn_check_digit
from evalflow.simulator.tracked import Pii

PERSON = "PERSON"
EMAIL_ADDRESS = "EMAIL_ADDRESS"
PHONE_NUMBER = "PHONE_NUMBER"
CREDIT_CARD = "CREDIT_CARD"
STREET_ADDRESS = "STREET_ADDRESS"
ACCOUNT_ID = "ACCOUNT_ID"
ORDER_ID = "ORDER_ID"
IBAN_CODE = "IBAN_CODE"
IP_ADDRESS = "IP_ADDRESS"
DATE_OF_BIRTH = "DATE_OF_BIRTH"

PII_TYPES = (
    PERSON,
    EMAIL_ADDRESS,
    PHONE_NUMBER,
    CREDIT_CARD,
    STREET_ADDRESS,
    ACCOUNT_ID,
    ORDER_ID,
    IBAN_CODE,
    IP_ADDRESS,
    DATE_OF_BIRTH,
)

# origin -> (first names, last names, countries people of that origin bank from)
NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "english": (
        ("James", "Olivia", "William", "Emily", "Oliver", "Charlotte", "Harry", "Sophie",
         "Thomas", "Grace", "Daniel", "Megan"),
        ("Smith", "Johnson", "Williams", "Brown", "Taylor", "Wilson", "Davies", "Evans",
         "Thompson", "O'Connor", "Clarke", "Walker"),
        ("US", "US", "GB"),
    ),
    "spanish": (
        ("José", "María", "Alejandro", "Lucía", "Javier", "Carmen", "Diego", "Sofía",
         "Andrés", "Valentina"),
        ("García", "Rodríguez", "Martínez", "López", "Hernández", "González", "Pérez",
         "Sánchez", "Ramírez", "Torres"),
        ("ES", "US"),
    ),
    "indian": (
        ("Priya", "Arjun", "Ananya", "Rahul", "Deepika", "Vikram", "Lakshmi", "Sanjay",
         "Kavya", "Aditya"),
        ("Sharma", "Patel", "Iyer", "Reddy", "Nair", "Gupta", "Venkataraman", "Chatterjee",
         "Singh", "Krishnan"),
        ("IN", "IN", "US", "GB"),
    ),
    "chinese": (
        ("Wei", "Fang", "Min", "Jing", "Lei", "Xiuying", "Hao", "Yan", "Jun", "Mei"),
        ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"),
        ("CN", "US"),
    ),
    "arabic": (
        ("Mohammed", "Fatima", "Omar", "Aisha", "Youssef", "Layla", "Khalid", "Noor",
         "Hassan", "Mariam"),
        ("Al-Farsi", "Haddad", "Al Hashimi", "Khalil", "Mansour", "El-Sayed", "Nasser",
         "Abdullah", "Saleh", "Bakr"),
        ("AE", "AE", "GB"),
    ),
    "nigerian": (
        ("Chinedu", "Ngozi", "Oluwaseun", "Adaeze", "Emeka", "Funmilayo", "Tunde", "Chiamaka",
         "Babatunde", "Amaka"),
        ("Okafor", "Adeyemi", "Balogun", "Eze", "Okonkwo", "Adebayo", "Nwosu", "Ogunleye",
         "Obi", "Abubakar"),
        ("NG", "NG", "GB"),
    ),
    "german": (
        ("Jürgen", "Anja", "Lukas", "Katrin", "Matthias", "Sabine", "Felix", "Ute",
         "Maximilian", "Jana"),
        ("Müller", "Schröder", "Schmidt", "Weiß", "Becker", "Hoffmann", "Köhler", "Fischer",
         "Wagner", "Zimmermann"),
        ("DE",),
    ),
    "french": (
        ("Amélie", "Léa", "Théo", "Camille", "Étienne", "François", "Chloé", "Hugo"),
        ("Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Rousseau", "Bonnet", "Fontaine"),
        ("FR",),
    ),
}
ORIGINS = tuple(NAMES)
_ORIGIN_WEIGHTS = (30, 14, 14, 10, 9, 9, 8, 6)

_EMAIL_DOMAINS = {
    "US": ("gmail.com", "yahoo.com", "outlook.com", "icloud.com"),
    "GB": ("gmail.com", "outlook.com", "btinternet.com", "yahoo.co.uk"),
    "ES": ("gmail.com", "hotmail.es", "yahoo.es"),
    "IN": ("gmail.com", "rediffmail.com", "yahoo.co.in"),
    "CN": ("qq.com", "163.com", "gmail.com"),
    "AE": ("gmail.com", "hotmail.com", "emirates.net.ae"),
    "NG": ("gmail.com", "yahoo.com"),
    "DE": ("web.de", "gmx.de", "t-online.de", "gmail.com"),
    "FR": ("orange.fr", "free.fr", "gmail.com"),
}

_US_CITIES = (("Springfield", "IL", "627"), ("Austin", "TX", "787"), ("Seattle", "WA", "981"),
              ("Boston", "MA", "021"), ("Denver", "CO", "802"), ("Miami", "FL", "331"))
_US_STREETS = ("Maple Avenue", "Oak Street", "Cedar Lane", "Washington Blvd", "Lakeview Drive",
               "Pine Road", "Elm Court", "Sunset Boulevard")
_UK_PLACES = (("London", "NW1 6XE"), ("Manchester", "M1 4BT"), ("Leeds", "LS1 3AB"),
              ("Bristol", "BS1 5TR"), ("Glasgow", "G2 8DL"))
_UK_STREETS = ("Baker Street", "Station Road", "Church Lane", "Victoria Road", "High Street",
               "Mill Lane")
_DE_PLACES = (("Berlin", "10115"), ("München", "80331"), ("Hamburg", "20095"),
              ("Köln", "50667"), ("Frankfurt am Main", "60311"))
_DE_STREETS = ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Lindenallee",
               "Goethestraße")
_IN_PLACES = (("Bengaluru", "560001"), ("Mumbai", "400001"), ("Chennai", "600028"),
              ("Hyderabad", "500081"), ("Pune", "411001"))
_IN_STREETS = ("MG Road", "Linking Road", "Anna Salai", "Banjara Hills Road No. 3", "FC Road")
_ES_PLACES = (("Madrid", "28013"), ("Barcelona", "08002"), ("Sevilla", "41004"),
              ("Valencia", "46002"))
_ES_STREETS = ("Calle Mayor", "Calle de Alcalá", "Avenida de la Constitución", "Calle Real",
               "Paseo de Gracia")
_NG_PLACES = (("Ikoyi", "Lagos"), ("Victoria Island", "Lagos"), ("Wuse II", "Abuja"),
              ("GRA", "Port Harcourt"))
_NG_STREETS = ("Awolowo Road", "Adeola Odeku Street", "Aminu Kano Crescent", "Bode Thomas Street")
_CN_PLACES = (("Chaoyang District", "Beijing", "100020"), ("Pudong", "Shanghai", "200120"),
              ("Tianhe District", "Guangzhou", "510620"))
_CN_STREETS = ("Jianguo Road", "Century Avenue", "Tianhe North Road", "Huaihai Road")
_AE_AREAS = ("Jumeirah 2", "Al Barsha 1", "Dubai Marina", "Mirdif")
_FR_PLACES = (("Paris", "75011"), ("Lyon", "69002"), ("Marseille", "13001"),
              ("Toulouse", "31000"))
_FR_STREETS = ("rue de la République", "avenue Jean Jaurès", "rue Victor Hugo",
               "boulevard Voltaire")


def _digits(rng: random.Random, n: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(n))


def ascii_fold(text: str) -> str:
    text = text.replace("ß", "ss")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def card_number(rng: random.Random) -> str:
    """A Luhn-valid Visa, Mastercard or Amex number, written with spaces, dashes or neither."""
    kind = rng.random()
    if kind < 0.12:
        body = rng.choice(("34", "37")) + _digits(rng, 12)
        number = body + luhn_check_digit(body)
        groups = (number[:4], number[4:10], number[10:])
    else:
        prefix = "4" if kind < 0.62 else str(rng.randint(51, 55))
        body = prefix + _digits(rng, 15 - len(prefix))
        number = body + luhn_check_digit(body)
        groups = (number[:4], number[4:8], number[8:12], number[12:])
    style = rng.random()
    if style < 0.55:
        return " ".join(groups)
    if style < 0.8:
        return "-".join(groups)
    return number


def iban(rng: random.Random, country: str) -> str:
    layouts = {"GB": lambda: "NWBK" + _digits(rng, 14), "DE": lambda: _digits(rng, 18),
               "ES": lambda: _digits(rng, 20), "FR": lambda: _digits(rng, 23),
               "AE": lambda: _digits(rng, 19)}
    code = country if country in layouts else rng.choice(("GB", "DE", "ES", "FR"))
    bban = layouts[code]()
    rearranged = bban + code + "00"
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    check = 98 - int(numeric) % 97
    value = f"{code}{check:02d}{bban}"
    if rng.random() < 0.6:
        value = " ".join(value[i:i + 4] for i in range(0, len(value), 4))
    return value


def phone_number(rng: random.Random, country: str) -> str:
    r = rng.random()
    if country == "US":
        a = rng.choice(("212", "312", "415", "617", "713", "206", "305", "646"))
        b, c = _digits(rng, 3), _digits(rng, 4)
        if r < 0.4:
            return f"({a}) {b}-{c}"
        if r < 0.65:
            return f"{a}-{b}-{c}"
        if r < 0.85:
            return f"+1 {a} {b} {c}"
        return f"{a}.{b}.{c}"
    if country == "GB":
        if r < 0.4:
            return f"+44 20 7946 {_digits(rng, 4)}"
        if r < 0.75:
            return f"07700 900{_digits(rng, 3)}"
        return f"+44 7700 900{_digits(rng, 3)}"
    if country == "DE":
        if r < 0.4:
            return f"+49 30 {_digits(rng, 6)}"
        if r < 0.75:
            return f"+49 151 {_digits(rng, 8)}"
        return f"0151 {_digits(rng, 8)}"
    if country == "IN":
        head = rng.choice("6789") + _digits(rng, 4)
        return f"+91 {head} {_digits(rng, 5)}" if r < 0.7 else f"0{head}{_digits(rng, 5)}"
    if country == "ES":
        return f"+34 6{_digits(rng, 2)} {_digits(rng, 3)} {_digits(rng, 3)}"
    if country == "NG":
        mid = rng.choice(("803", "806", "813", "703", "905"))
        if r < 0.6:
            return f"+234 {mid} {_digits(rng, 3)} {_digits(rng, 4)}"
        return f"0{mid} {_digits(rng, 3)} {_digits(rng, 4)}"
    if country == "CN":
        return f"+86 13{rng.randrange(10)} {_digits(rng, 4)} {_digits(rng, 4)}"
    if country == "AE":
        return f"+971 5{rng.choice('0256')} {_digits(rng, 3)} {_digits(rng, 4)}"
    # FR
    return "+33 6 " + " ".join(_digits(rng, 2) for _ in range(4))


def street_address(rng: random.Random, country: str) -> str:
    n = rng.randint(1, 250)
    if country == "US":
        city, state, zip3 = rng.choice(_US_CITIES)
        unit = f", Apt {rng.randint(1, 30)}{rng.choice('ABCD')}" if rng.random() < 0.35 else ""
        return f"{rng.randint(100, 9899)} {rng.choice(_US_STREETS)}{unit}, {city}, {state} {zip3}{_digits(rng, 2)}"
    if country == "GB":
        city, postcode = rng.choice(_UK_PLACES)
        return f"{n} {rng.choice(_UK_STREETS)}, {city} {postcode}"
    if country == "DE":
        city, plz = rng.choice(_DE_PLACES)
        return f"{rng.choice(_DE_STREETS)} {n}, {plz} {city}"
    if country == "IN":
        city, pin = rng.choice(_IN_PLACES)
        return f"Flat {rng.randint(1, 40)}0{rng.randint(1, 9)}, {rng.choice(_IN_STREETS)}, {city} {pin}"
    if country == "ES":
        city, cp = rng.choice(_ES_PLACES)
        return f"{rng.choice(_ES_STREETS)} {n}, {rng.randint(1, 6)}º, {cp} {city}"
    if country == "NG":
        area, city = rng.choice(_NG_PLACES)
        return f"{n} {rng.choice(_NG_STREETS)}, {area}, {city}"
    if country == "CN":
        district, city, post = rng.choice(_CN_PLACES)
        return f"Room {rng.randint(1, 30)}0{rng.randint(1, 9)}, No. {n} {rng.choice(_CN_STREETS)}, {district}, {city} {post}"
    if country == "AE":
        return f"Villa {n}, Street {rng.randint(1, 40)}, {rng.choice(_AE_AREAS)}, Dubai"
    city, cp = rng.choice(_FR_PLACES)
    return f"{n} {rng.choice(_FR_STREETS)}, {cp} {city}"


def ip_address(rng: random.Random) -> str:
    first = rng.choice((24, 31, 45, 62, 77, 81, 98, 104, 151, 176, 185, 203))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def date_of_birth(rng: random.Random, country: str) -> str:
    year, month, day = rng.randint(1948, 2005), rng.randint(1, 12), rng.randint(1, 28)
    if country == "US":
        return f"{month:02d}/{day:02d}/{year}" if rng.random() < 0.6 else f"{_MONTHS[month - 1]} {day}, {year}"
    if country in ("DE",):
        return f"{day:02d}.{month:02d}.{year}"
    if country == "CN":
        return f"{year}-{month:02d}-{day:02d}"
    return f"{day:02d}/{month:02d}/{year}" if rng.random() < 0.7 else f"{day} {_MONTHS[month - 1]} {year}"


def account_id(rng: random.Random) -> str:
    return f"ACC-{rng.randint(10_000_000, 99_999_999)}"


def order_id(rng: random.Random) -> str:
    return f"ORD-{rng.randint(1_000_000, 9_999_999)}"


def email_for(rng: random.Random, first: str, last: str, country: str) -> str:
    f = ascii_fold(first).lower().replace(" ", "")
    last_name = ascii_fold(last).lower().replace(" ", "").replace("'", "").replace("-", "")
    style = rng.random()
    if style < 0.35:
        local = f"{f}.{last_name}"
    elif style < 0.55:
        local = f"{f}{last_name}{rng.randint(1, 99)}"
    elif style < 0.75:
        local = f"{f[0]}.{last_name}"
    elif style < 0.9:
        local = f"{f}_{last_name}{rng.randint(70, 99)}"
    else:
        local = f"{last_name}.{f}{rng.randint(1, 9)}"
    return f"{local}@{rng.choice(_EMAIL_DOMAINS[country])}"


def person_name(rng: random.Random, origin: str | None = None) -> tuple[str, str, str]:
    """(first, last, origin) of a random person."""
    if origin is None:
        origin = rng.choices(ORIGINS, weights=_ORIGIN_WEIGHTS)[0]
    firsts, lasts, _countries = NAMES[origin]
    return rng.choice(firsts), rng.choice(lasts), origin


def full_name(first: str, last: str, origin: str, family_first: bool = False) -> str:
    return f"{last} {first}" if family_first and origin == "chinese" else f"{first} {last}"


def case_variant(rng: random.Random, name: str) -> str:
    """How a customer types a name: mostly Title case, sometimes all lower or all upper."""
    r = rng.random()
    if r < 0.7:
        return name
    if r < 0.85:
        return name.lower()
    return name.upper()


@dataclass
class Persona:
    """A customer: the same person keeps the same contact details across sessions."""

    user_id: str
    first: str
    last: str
    origin: str
    country: str
    name: str  # as the bank's systems store it
    email: str
    phone: str
    card: str
    address: str
    account: str
    order: str
    iban: str
    ip: str
    locale: str
    dob: str

    def pii(self, attr: str) -> Pii:
        types = {"name": PERSON, "first": PERSON, "last": PERSON, "email": EMAIL_ADDRESS,
                 "phone": PHONE_NUMBER, "card": CREDIT_CARD, "address": STREET_ADDRESS,
                 "account": ACCOUNT_ID, "order": ORDER_ID, "iban": IBAN_CODE,
                 "ip": IP_ADDRESS, "dob": DATE_OF_BIRTH}
        return Pii(getattr(self, attr), types[attr])


_LOCALES = {"US": "en-US", "GB": "en-GB", "ES": "es-ES", "IN": "en-IN", "CN": "zh-CN",
            "AE": "ar-AE", "NG": "en-NG", "DE": "de-DE", "FR": "fr-FR"}


def make_persona(seed: int, index: int) -> Persona:
    """Persona `index` depends only on (seed, index), never on the order users are drawn."""
    rng = random.Random(f"northwind-persona-{seed}-{index}")
    first, last, origin = person_name(rng)
    country = rng.choice(NAMES[origin][2])
    return Persona(
        user_id=f"u-{index:06d}",
        first=first,
        last=last,
        origin=origin,
        country=country,
        name=full_name(first, last, origin, family_first=rng.random() < 0.5),
        email=email_for(rng, first, last, country),
        phone=phone_number(rng, country),
        card=card_number(rng),
        address=street_address(rng, country),
        account=account_id(rng),
        order=order_id(rng),
        iban=iban(rng, country),
        ip=ip_address(rng),
        locale=_LOCALES[country],
        dob=date_of_birth(rng, country),
    )
