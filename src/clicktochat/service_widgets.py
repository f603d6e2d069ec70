"""What the REST API and the CLI can do with widgets, validated once: a part of
`service.Service` (as clickstore is of store.Store), apart because a widget is its own idea."""

from __future__ import annotations

import sqlite3
from typing import Any

from .errors import Conflict, InvalidInput, NotFound
from .store import Store
from .versions import as_stored, require
from .whatsapp import WhatsApp
from .widget import Widget, WidgetSettings, apply_changes, check_settings, check_widget_id, random_widget_id

CHANGE_TRIES = 5  # reads and tries of a change that another request's change keeps overtaking


class WidgetService:
    store: Store
    whatsapp: WhatsApp
    base_url: str

    def forget(self) -> None:
        """service.Service's: drop what is cached of links and widgets."""
        raise NotImplementedError

    def widget_snippet(self, widget_id: str) -> str:
        return f'<script src="{self.base_url}/widget.js" data-widget="{widget_id}" async></script>'

    async def create_widget(
        self, business_id: int, widget_id: str | None = None, settings: dict[str, Any] | None = None
    ) -> Widget:
        if await self.store.business(business_id) is None:
            raise InvalidInput("business_id", f"there is no business {business_id}")
        checked = check_settings(settings or {})
        await self._check_agents(checked, business_id)
        await self._check_optin_form(checked, business_id)
        stored = _changed(checked)
        if widget_id is None:
            widget = await self._add_random(business_id, stored)
        else:
            widget_id = check_widget_id(widget_id)
            added = None
            if await self.store.widget(widget_id) is None:
                added = await self._add(widget_id, business_id, stored)
            if added is None:  # taken before we looked, or while we did (another request, another instance)
                raise InvalidInput("id", f"{widget_id!r} is already taken; choose another id")
            widget = added
        self.forget()
        return widget

    async def _add(self, widget_id: str, business_id: int, stored: dict[str, Any]) -> Widget | None:
        """None if the id was taken in the meantime."""
        try:
            return await self.store.add_widget(widget_id, business_id, stored)
        except sqlite3.IntegrityError:
            if await self.store.widget(widget_id) is not None:
                return None
            if await self.store.business(business_id) is None:  # deleted while we looked
                raise InvalidInput("business_id", f"there is no business {business_id}") from None
            raise

    async def _add_random(self, business_id: int, stored: dict[str, Any]) -> Widget:
        for _ in range(5):  # a collision among random ids is rare; five in a row means something else is wrong
            if (widget := await self._add(random_widget_id(), business_id, stored)) is not None:
                return widget
        raise RuntimeError("five random widget ids in a row were taken")

    async def get_widget(self, widget_id: str) -> Widget:
        widget = await self.store.widget(widget_id.lower())
        if widget is None:
            raise NotFound(f"There is no widget {widget_id!r}.")
        return widget

    async def update_widget(self, widget_id: str, changes: dict[str, Any], if_match: str | None = None) -> Widget:
        """Change a widget's business or settings; a setting set to None goes back to its default.
        Only what `changes` names changes: two requests at once changing two settings (or one
        the business, the other a setting) both stay, each applied to what the other left.
        With `if_match` (`versions`), only while the widget is the one those tags name: each read
        is checked, and the write is a compare-and-set on what was read."""
        changes = dict(changes)
        if "business_id" in changes and changes["business_id"] is None:  # a default for the others, not for this
            raise InvalidInput("business_id", "a widget always belongs to a business: give its id, or leave it out")
        for _ in range(CHANGE_TRIES):
            found = await self.store.widget_as_stored(widget_id.lower())
            if found is None:
                raise NotFound(f"There is no widget {widget_id!r}.")
            widget, stored = found
            require(if_match, widget, "This widget")
            business_id = changes.get("business_id") or widget.business_id
            if await self.store.business(business_id) is None:
                raise InvalidInput("business_id", f"there is no business {business_id}")
            checked = apply_changes({k: v for k, v in changes.items() if k != "business_id"}, widget.settings)
            if "agent_ids" in changes or business_id != widget.business_id:  # not one taken since
                await self._check_agents(checked, business_id)
            await self._check_optin_form(checked, business_id)
            if business_id == widget.business_id and checked == widget.settings:
                return widget  # nothing changed: its version stays (a later If-Match with it still holds)
            if await self.store.update_widget(widget.id, business_id, _changed(checked), (widget.business_id, stored)):
                self.forget()
                return await self.get_widget(widget.id)
        raise Conflict(f"Widget {widget_id!r} kept changing while this change was made; send it again.")

    async def delete_widget(self, widget_id: str, if_match: str | None = None) -> None:
        widget = await self.get_widget(widget_id)
        await self.store.delete_widget(widget.id, as_stored(self.store.widget, widget.id, if_match, "This widget"))
        self.forget()

    async def _check_agents(self, settings: WidgetSettings, business_id: int) -> None:
        if settings.agent_ids is None:
            return
        mine = {agent.id for agent in await self.store.agents(business_id)}
        for agent_id in settings.agent_ids:
            if agent_id not in mine:
                raise InvalidInput("agent_ids", f"there is no agent {agent_id} in business {business_id}")


    async def _check_optin_form(self, settings: WidgetSettings, business_id: int) -> None:
        """The panel's form must exist and be the widget's business's: never sign people up to
        another business from this one's widget."""
        slug = settings.optin_form
        if slug is None:
            return
        form = await self.whatsapp.chats.form(slug)
        if form is None:
            raise InvalidInput("optin_form", f"there is no opt-in form {slug!r}: make one first (Dashboard › Opt-ins,"
                                             " or clicktochat optin form), or leave it empty")  # fmt: skip
        if form.business_id != business_id:
            raise InvalidInput("optin_form", f"the opt-in form {slug!r} belongs to another business; choose one of"
                                             f" business {business_id}'s forms")  # fmt: skip


def _changed(settings: WidgetSettings) -> dict[str, Any]:
    """Only what differs from the defaults is stored: better defaults reach old widgets too."""
    defaults = WidgetSettings().to_json()
    return {key: value for key, value in settings.to_json().items() if value != defaults[key]}
