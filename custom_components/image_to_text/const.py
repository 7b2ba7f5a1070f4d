"""Names shared by every module of the integration: the domain, option keys and dispatcher signals.

The signal helpers carry the config entry's id so that two bridges (two entries) never hear each
other's results.
"""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "image_to_text"

CONF_BASE_TOPIC: Final = "base_topic"
DEFAULT_BASE_TOPIC: Final = "image_to_text"

CONF_KEYWORDS: Final = "keywords"
CONF_KEYWORD_HOLD: Final = "keyword_hold"
DEFAULT_KEYWORD_HOLD: Final = 60

EVENT_RESULT: Final = "image_to_text_result"
EVENT_ERROR: Final = "image_to_text_error"
EVENT_TYPE_RESULT: Final = "result"

TASK_CAPTION: Final = "caption"
TASK_OCR: Final = "ocr"
TASK_METER: Final = "meter"
TASK_FACES: Final = "faces"
TASKS: Final = (TASK_CAPTION, TASK_OCR, TASK_METER, TASK_FACES)
#: How a task reads in entity names.
TASK_LABELS: Final = {
    TASK_CAPTION: "Caption",
    TASK_OCR: "OCR",
    TASK_METER: "Meter",
    TASK_FACES: "Faces",
}

# Home Assistant keeps at most 255 characters in a state; longer text goes to an attribute.
MAX_STATE_LENGTH: Final = 255


def signal_result(entry_id: str) -> str:
    """Dispatcher signal, args (result: dict): one valid result payload."""
    return f"{DOMAIN}_{entry_id}_result"


def signal_image(entry_id: str) -> str:
    """Dispatcher signal, args (camera: str, task: str, jpeg: bytes): an analysed frame."""
    return f"{DOMAIN}_{entry_id}_image"


def signal_error(entry_id: str) -> str:
    """Dispatcher signal, args (error: dict): one valid error payload."""
    return f"{DOMAIN}_{entry_id}_error"


def signal_availability(entry_id: str) -> str:
    """Dispatcher signal, args (online: bool): the bridge went online or offline."""
    return f"{DOMAIN}_{entry_id}_availability"


def signal_info(entry_id: str) -> str:
    """Dispatcher signal, args (info: dict): the bridge's retained info changed."""
    return f"{DOMAIN}_{entry_id}_info"


# Unique ids and device identifiers are ``<bridge_id>/<camera>/<task>/<kind>``: no camera, task or
# kind holds a ``/`` (one topic level each), so read from the right every part is unambiguous,
# whatever the bridge id holds; ``bridge`` is reserved (never a camera) and names the bridge.
BRIDGE_PART: Final = "bridge"


def entity_unique_id(bridge_id: str, camera: str, task: str, kind: str) -> str:
    """Unique id of one entity of a camera and task (``kind``: text, event, image, ...)."""
    return f"{bridge_id}/{camera}/{task}/{kind}"


def bridge_unique_id(bridge_id: str, kind: str) -> str:
    """Unique id of one entity of the bridge itself (``kind``: connectivity, ...)."""
    return f"{bridge_id}/{BRIDGE_PART}/{kind}"


def bridge_identifier(bridge_id: str) -> tuple[str, str]:
    """Device registry identifier of the bridge device."""
    return (DOMAIN, f"{bridge_id}/{BRIDGE_PART}")


#: Members of a bridge group are devices of their own: ``<site_id>/bridges/<bridge_id>``.
MEMBERS_PART: Final = "bridges"


def member_identifier(site_id: str, bridge_id: str) -> tuple[str, str]:
    """Device registry identifier of one bridge of a group."""
    return (DOMAIN, f"{site_id}/{MEMBERS_PART}/{bridge_id}")


def member_unique_id(site_id: str, bridge_id: str, kind: str) -> str:
    """Unique id of one entity of one bridge of a group (``kind``: connectivity, ...)."""
    return f"{site_id}/{MEMBERS_PART}/{bridge_id}/{kind}"


def camera_identifier(bridge_id: str, camera: str) -> tuple[str, str]:
    """Device registry identifier of one camera's device."""
    return (DOMAIN, f"{bridge_id}/{camera}")


def camera_display_name(camera: str) -> str:
    """A camera's device name: ``front_door`` becomes ``Front door``."""
    return camera.replace("_", " ").capitalize()


def signal_state(entry_id: str) -> str:
    """Dispatcher signal, args (camera: str, task: str): a result, new or retained, was stored.

    Unlike :func:`signal_result` it also fires for retained results replayed when subscribing,
    which restore the sensors' state but are not news for events and automations.
    """
    return f"{DOMAIN}_{entry_id}_state"
