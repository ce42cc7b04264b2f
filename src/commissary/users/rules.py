"""What makes a password or an e-mail address acceptable, in one place: the schemas, the
services and the command line apply the same rules."""

from __future__ import annotations

import unicodedata

import email_validator
from email_validator import EmailNotValidError
from zxcvbn import zxcvbn

from commissary.core.text import plain_text

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128
# zxcvbn's scale: 3 is "safely unguessable" against an online attack and slows an offline
# one; below that the password is on (or a small variation of) a list of leaked ones.
PASSWORD_MIN_SCORE = 3
_ZXCVBN_MAX_LENGTH = 72  # zxcvbn's own limit; the start of a password decides its score

PASSWORD_RULES = (
    f"{PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters, no NUL character, letters "
    "and at least one digit or symbol, and not a common or leaked password or a small "
    "variation of one (checked with zxcvbn's frequency lists)"
)

# Scripts that are written together in one name: Japanese mixes kana and kanji, Korean
# hangul and hanja. Any other mix of scripts in a label is a look-alike risk.
_SCRIPT_GROUPS = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK", "CJK": "CJK"}
_RESERVED_DOMAINS = tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES)
# A stand-in top-level domain for the syntax check of a reserved domain; the reserved
# domain itself is then accepted or refused by ``ALLOW_RESERVED_EMAIL_DOMAINS``.
_SYNTAX_SUFFIX = ".example"


def check_password(value: str) -> str:
    """Refuse NUL, text the databases cannot store, and guessable passwords (with why)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    plain_text(value)
    if not any(c.isalpha() for c in value) or all(c.isalpha() for c in value):
        raise ValueError("use letters and at least one digit or symbol")
    result = zxcvbn(value[:_ZXCVBN_MAX_LENGTH])
    if result["score"] < PASSWORD_MIN_SCORE:
        feedback = result["feedback"]
        why = feedback["warning"] or "This password is too easy to guess."
        hints = " ".join(feedback["suggestions"])
        raise ValueError(f"this password is too easy to guess: {why} {hints}".strip())
    return value


def fold_email(value: str) -> str:
    """The one spelling of an address: compatibility forms (full-width letters) folded,
    trimmed, lower-case. Used to store and to look up."""
    return unicodedata.normalize("NFKC", value).strip().lower()


def _script(char: str) -> str | None:
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    first = name.split(" ", 1)[0]
    return _SCRIPT_GROUPS.get(first, first) or None


def _single_script(text: str, part: str) -> None:
    scripts = {s for s in map(_script, text) if s}
    if len(scripts) > 1:
        raise ValueError(
            f"the {part} mixes alphabets ({', '.join(sorted(scripts)).lower()}); "
            "look-alike letters are not accepted"
        )


def is_reserved_domain(domain: str) -> bool:
    """A special-use name (``.local``, ``.test``, ``localhost``…) that no public mail
    server answers for; an intranet may still use one."""
    domain = domain.lower().rstrip(".")
    return any(domain == d or domain.endswith("." + d) for d in _RESERVED_DOMAINS)


def check_email(value: str) -> str:
    """Fold the address, refuse labels that mix alphabets (a Cyrillic "i" in ``admin``),
    and check the syntax with email-validator. Reserved domains pass here; the services
    accept them only when ``ALLOW_RESERVED_EMAIL_DOMAINS`` is set."""
    value = plain_text(fold_email(value))
    local, at, domain = value.rpartition("@")
    if not at:
        raise ValueError("an e-mail address needs an @-sign")
    _single_script(local, "part before the @-sign")
    for label in domain.split("."):
        _single_script(label, "domain")
    reserved = is_reserved_domain(domain)
    checked = f"{local}@{domain}{_SYNTAX_SUFFIX}" if reserved else value
    try:
        normalized = email_validator.validate_email(checked, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None
    return normalized.removesuffix(_SYNTAX_SUFFIX) if reserved else normalized
