"""Repair issues: a model the bridge failed to load is said on the Repairs page, with its reason.

Without it a failed model is invisible: the bridge keeps running the other tasks and this task's
entities simply never update. The issue goes away by itself once the bridge reports the model
loaded (or no longer has the task); the bridge's reason is cut to a readable length.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.core import callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .bridges import BridgeSet

ISSUE_MODEL_FAILED = "model_failed"
MODEL_FAILED = "failed"
_MAX_REASON = 500


def _prefix(entry_id: str) -> str:
    return f"{ISSUE_MODEL_FAILED}_{entry_id}_"


def model_failed(model: dict[str, Any] | None) -> bool:
    """Whether the bridge says this model failed to load."""
    return isinstance(model, dict) and model.get("status") == MODEL_FAILED


def model_failures(bridges: BridgeSet) -> dict[str, tuple[str | None, str, dict[str, Any]]]:
    """Every model of the site's bridges: issue key -> (group member or None, task, model).

    A single bridge's keys are its task names (as they always were); a group member's are
    ``<task>@<bridge_id>``, one issue per bridge whose model failed.
    """
    found: dict[str, tuple[str | None, str, dict[str, Any]]] = {}
    for bridge in bridges.all():
        for task, model in bridge.models().items():
            if bridge.shared:
                found[f"{task}@{bridge.name}"] = (bridge.name, task, model)
            else:
                found[task] = (None, task, model)
    return found


@callback
def async_update_model_issues(
    hass: HomeAssistant,
    entry_id: str,
    base_topic: str,
    models: dict[str, tuple[str | None, str, dict[str, Any]]],
) -> None:
    """Raise an issue for each failed model of the site's bridges, and clear the others'."""
    prefix = _prefix(entry_id)
    for key, (member, task, model) in models.items():
        if not model_failed(model):
            ir.async_delete_issue(hass, DOMAIN, f"{prefix}{key}")
            continue
        reason = str(model.get("error") or "the bridge gave no reason")
        ir.async_create_issue(
            hass,
            DOMAIN,
            f"{prefix}{key}",
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_MODEL_FAILED,
            translation_placeholders={
                "task": task,
                "model": str(model.get("model") or task),
                "bridge": base_topic if member is None else f"{member} ({base_topic})",
                "error": reason[:_MAX_REASON],
            },
        )
    for domain, issue_id in list(ir.async_get(hass).issues):
        if (
            domain == DOMAIN
            and issue_id.startswith(prefix)
            and issue_id[len(prefix) :] not in models
        ):
            ir.async_delete_issue(hass, DOMAIN, issue_id)


@callback
def async_clear_model_issues(hass: HomeAssistant, entry_id: str) -> None:
    """The bridge's entry was deleted: its issues go with it."""
    async_update_model_issues(hass, entry_id, "", {})
