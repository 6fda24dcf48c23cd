"""Message catalogues: extract the texts the code marks with `t(...)`, merge them into each
locale's `.po`, compile the `.mo` the runtime reads, and check that nothing is missing.

    python -m tools.i18n update    # messages.pot from the code; new ids added to every .po
    python -m tools.i18n compile   # .po → .mo (commit both)
    python -m tools.i18n check     # exit 1 if an id lacks a translation or a .mo is stale

Babel (a dev dependency) does the extraction and compilation; the service itself reads the
`.mo` files with the standard library's gettext.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "chalicelib"
LOCALE_DIR = SOURCES / "i18n" / "locales"
LOCALES = ("zh_CN", "en")
# t(message, context=...) is pgettext-like but with the context as a keyword: extract the message.
KEYWORDS = {"t": None}
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
METHOD_OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}


def po_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"


def extracted() -> Catalog:
    """Every (context, id) the code and templates use, with where."""
    catalog = Catalog(project="referral-service")
    for filename, lineno, message, comments, context in extract_from_dir(
            SOURCES, METHODS, keywords={**KEYWORDS, "_": None, "gettext": None, "pgettext": ((1, "c"), 2)},
            options_map=METHOD_OPTIONS, strip_comment_tags=True):
        catalog.add(message, locations=[(f"chalicelib/{filename}", lineno)], context=context)
    _add_contexts(catalog)
    return catalog


def _add_contexts(catalog: Catalog) -> None:
    """`t("…", context="share:weibo")` carries its context as a keyword, which Babel's extractor
    does not read: find those calls with the ast module instead."""
    import ast

    for path in SOURCES.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "t" and node.args):
                continue
            context = next((k.value for k in node.keywords if k.arg == "context"), None)
            if not isinstance(context, ast.Constant):
                continue
            message = node.args[0]
            if isinstance(message, ast.Constant) and isinstance(message.value, str):
                catalog.delete(message.value)  # the context-less copy the extractor added
                catalog.add(message.value, context=context.value,
                            locations=[(str(path.relative_to(ROOT)), node.lineno)])


def load(locale: str) -> Catalog:
    with open(po_path(locale), "rb") as f:
        return read_po(f, locale=locale)


def update() -> None:
    template = extracted()
    for locale in LOCALES:
        path = po_path(locale)
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = load(locale) if path.exists() else Catalog(locale=locale, project="referral-service",
                                                             copyright_holder="", msgid_bugs_address="")
        if locale == "en":  # the ids are the English texts
            for message in template:
                if message.id and (message.context, message.id) not in {(m.context, m.id) for m in catalog}:
                    catalog.add(message.id, message.id, context=message.context)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with open(path, "wb") as f:
            write_po(f, catalog, width=100, no_location=True, sort_output=True)  # no line numbers: fewer merge conflicts


def compiled(locale: str) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, load(locale), use_fuzzy=False)
    return buffer.getvalue()


def compile_all() -> None:
    for locale in LOCALES:
        po_path(locale).with_suffix(".mo").write_bytes(compiled(locale))


def problems() -> list[str]:
    found: list[str] = []
    wanted = {(m.context, m.id) for m in extracted() if m.id}
    for locale in LOCALES:
        catalog = load(locale)
        have = {(m.context, m.id): m for m in catalog if m.id}
        for key in sorted(wanted, key=str):
            message = have.get(key)
            if message is None:
                found.append(f"{locale}: missing {key[1]!r}" + (f" (context {key[0]})" if key[0] else ""))
            elif not message.string or message.fuzzy:
                found.append(f"{locale}: untranslated {key[1]!r}")
            elif _placeholders(message.id) != _placeholders(message.string):
                found.append(f"{locale}: placeholders differ in {key[1]!r}: {message.string!r}")
        mo = po_path(locale).with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != compiled(locale):
            found.append(f"{locale}: {mo.relative_to(ROOT)} is stale: python -m tools.i18n compile")
    return found


def _placeholders(text: str) -> set[str]:
    import string

    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command == "update":
        update()
    elif command == "compile":
        compile_all()
    elif command == "check":
        found = problems()
        print("\n".join(found) or "catalogues complete")
        return 1 if found else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
