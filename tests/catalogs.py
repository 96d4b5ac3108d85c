"""Reading the translation catalogs in tests: a small .po parser and the compiled .mo's messages."""
import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The catalogs that ship: the plugin's own, and the demo store's (shop/ and templates/).
CATALOG_DIRS = {"personalization": ROOT / "personalization" / "locale", "shop": ROOT / "shop" / "locale"}
LANGUAGES = ["en", "zh_Hans"]
_FIELD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) (".*")$')
#: %(name)s-style and {name}-style placeholders.
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sdr]|%%|\{[a-z_]*\}")


@dataclass
class Entry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict = field(default_factory=dict)  # form index -> text
    flags: set = field(default_factory=set)
    obsolete: bool = False

    @property
    def key(self):
        """The entry's key in a compiled catalog."""
        return f"{self.msgctxt}\x04{self.msgid}" if self.msgctxt is not None else self.msgid


def po_path(app, language):
    return CATALOG_DIRS[app] / language / "LC_MESSAGES" / "django.po"


def mo_path(app, language):
    return po_path(app, language).with_suffix(".mo")


def read_po(path):
    """The entries of a .po file, the header (msgid "") first."""
    entries, entry, last = [], None, None
    for line in Path(path).read_text(encoding="utf-8").splitlines() + [""]:
        line = line.strip()
        if not line:
            if entry is not None:
                entries.append(entry)
            entry = last = None
            continue
        entry = entry or Entry()
        if line.startswith("#~"):
            entry.obsolete = True
        elif line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif match := _FIELD.match(line):
            last, text = match.group(1), ast.literal_eval(match.group(2))
            _append(entry, last, text)
        elif line.startswith('"') and last:
            _append(entry, last, ast.literal_eval(line))
        else:
            raise ValueError(f"{path}: cannot read {line!r}")
    return entries


def _append(entry, name, text):
    if name.startswith("msgstr"):
        index = int(name[7:-1]) if "[" in name else 0
        entry.msgstr[index] = entry.msgstr.get(index, "") + text
    else:
        setattr(entry, name, (getattr(entry, name) or "") + text)


def placeholders(text):
    return sorted(_PLACEHOLDER.findall(text))


def read_mo(path):
    """The compiled catalog's messages: {msgid or (msgid, form): text}, without the header."""
    with open(path, "rb") as mo:
        catalog = dict(gettext.GNUTranslations(mo)._catalog)
    catalog.pop("", None)
    return catalog


def expected_mo(entries):
    """What the .mo compiled from these entries holds: the translated, non-fuzzy entries."""
    expected = {}
    for entry in entries[1:]:
        if entry.obsolete or "fuzzy" in entry.flags or not all(entry.msgstr.values()):
            continue
        if entry.msgid_plural is not None:
            for index, text in entry.msgstr.items():
                expected[(entry.key, index)] = text
        else:
            expected[entry.key] = entry.msgstr[0]
    return expected
