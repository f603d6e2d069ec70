"""A number's message templates as Meta lists them (`GET /{waba-id}/message_templates`), and
the checks made before a notification is queued: the template exists in that language, Meta
approved it, and the parameters fit its body (`{{1}}`, `{{2}}`... or, with
`parameter_format: NAMED`, `{{first_name}}`...). A business may start a conversation only with
an approved template, so these checks turn Meta's later refusals (132000, 132001) into a 422
before anything waits in the outbox."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MAX_PARAMETER_LENGTH = 1024  # Meta's limit for a body parameter's text
CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")


@dataclass(frozen=True)
class Template:
    name: str
    language: str
    status: str
    category: str
    body: str | None
    parameter_names: tuple[str, ...]  # in order of first appearance; "1", "2"... when positional
    components: list[dict[str, Any]]

    @property
    def named(self) -> bool:
        return any(not name.isdigit() for name in self.parameter_names)

    @property
    def approved(self) -> bool:
        return self.status == "APPROVED"


def read_template(item: Any) -> Template | None:
    """One entry of Meta's list; None for one without a name or a language (kept out)."""
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("language"), str):
        return None
    components = [c for c in item.get("components") or [] if isinstance(c, dict)]
    body = next((c.get("text") for c in components if str(c.get("type", "")).upper() == "BODY"), None)
    body = body if isinstance(body, str) else None
    names: list[str] = []
    for found in PLACEHOLDER.findall(body or ""):
        if found not in names:
            names.append(found)
    if all(n.isdigit() for n in names):
        names.sort(key=int)
    category = str(item.get("category") or "").upper()
    return Template(
        name=item["name"][:512], language=item["language"][:20], status=str(item.get("status") or "").upper()[:20],
        category=category if category in CATEGORIES else "UTILITY" if not category else category[:20],
        body=body, parameter_names=tuple(names), components=components,
    )  # fmt: skip


def read_templates(items: Sequence[Any]) -> list[Template]:
    return [t for t in (read_template(item) for item in items) if t is not None]


def approved_template(templates: Sequence[Template], name: str, language: str | None,
                      language_field: str = "language") -> Template:  # fmt: skip
    """`name` in `language` (None: in the only language it has) among a number's synced
    templates, approved by Meta; else a 422 naming `template` (unknown, not approved) or
    `language_field` (it exists in other languages, or in several), saying how to put it right."""
    others = sorted(t.language for t in templates if t.name == name)
    if language is None:
        if len(others) > 1:
            raise InvalidInput(language_field, f"the template {name} exists in {', '.join(others)}: name one")
        language = others[0] if others else ""
    found = next((t for t in templates if t.name == name and t.language == language), None)
    if found is None:
        if others:
            raise InvalidInput(language_field, f"the template {name} exists in {', '.join(others)}, not {language}")
        raise InvalidInput("template", f"the number has no template {name} (synced from Meta): check the name, "
                                       "or fetch them again with clicktochat whatsapp templates sync")  # fmt: skip
    if not found.approved:
        raise InvalidInput("template", f"the template {name} ({language}) is {found.status or 'unknown'} at Meta, "
                                       "not APPROVED: wait for Meta's approval, then run clicktochat whatsapp "
                                       "templates sync")  # fmt: skip
    return found


def check_parameters(template: Template, parameters: Any) -> list[str]:
    """The parameters as strings, or ValueError saying what does not fit the template."""
    if not isinstance(parameters, list) or not all(isinstance(p, str | int | float) for p in parameters):
        raise ValueError("must be a list of strings")
    values = [str(p) for p in parameters]
    wanted = len(template.parameter_names)
    if len(values) != wanted:
        names = ", ".join("{{" + n + "}}" for n in template.parameter_names) or "none"
        raise ValueError(f"the template {template.name} ({template.language}) takes {wanted} parameter"
                         f"{'' if wanted == 1 else 's'} ({names}), not {len(values)}")  # fmt: skip
    for n, value in enumerate(values, 1):
        if not value.strip():
            raise ValueError(f"parameter {n} is empty")
        if len(value) > MAX_PARAMETER_LENGTH:
            raise ValueError(f"parameter {n} is longer than {MAX_PARAMETER_LENGTH} characters")
        if "\n" in value or "\t" in value or "    " in value:
            raise ValueError(f"parameter {n} holds a new line, a tab or four spaces in a row (Meta refuses them)")
    return values


def render(template: Template, parameters: Sequence[str]) -> str:
    """The body as the customer will read it (for the dashboard and exports)."""
    values = dict(zip(template.parameter_names, parameters, strict=False))
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template.body or "")
