"""Sensors: the latest text of each camera and task, meter readings, and each camera's health.

A text sensor's state is the caption or OCR text (cut to the 255 characters a state may hold, the
whole text in ``full_text``); a meter camera gets a numeric sensor whose unit and device class come
from the bridge's info; a faces camera gets "Last person" (faces.py). Health sensors (diagnostic)
show the bridge's counters of each camera.
"""

from __future__ import annotations

from contextlib import suppress
from functools import partial
from typing import TYPE_CHECKING, Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect

from .const import (
    MAX_STATE_LENGTH,
    TASK_FACES,
    TASK_METER,
    TASK_OCR,
    entity_unique_id,
    signal_state,
)
from .entity import CameraEntity, EntityFactories, async_follow_cameras
from .limits import MAX_ATTRIBUTES_BYTES, PER_FRAME_ATTRIBUTES, fit

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant
    from homeassistant.helpers.entity_platform import AddEntitiesCallback

    from .hub import ImageToTextHub

# Result fields every text sensor shows as attributes.
RESULT_ATTRIBUTES = ("camera", "model", "latency_ms", "frame_id", "captured_at")
METER_ATTRIBUTES = ("raw", "text", "digit_confidence", "confirmed_by")
HEALTH_TASK = "health"


# Push only: entities are written from MQTT callbacks, never polled or updated in parallel.
PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: ConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add each camera's sensors as the bridge's info names them."""
    async_follow_cameras(entry, entry.runtime_data.hub, async_add_entities, _wanted)


def _wanted(hub: ImageToTextHub) -> EntityFactories:
    from .faces import LastPersonSensor  # faces.py builds on this module

    classes: dict[str, type[ResultSensor]] = {
        TASK_METER: MeterSensor,
        TASK_FACES: LastPersonSensor,
    }
    wanted: EntityFactories = {}
    for camera in hub.cameras:
        for task in hub.tasks(camera):
            sensor_class = classes.get(task, TextSensor)
            wanted[entity_unique_id(hub.site_id, camera, task, "text")] = partial(
                sensor_class, hub, camera, task
            )
        for health in HEALTH_SENSORS:
            wanted[entity_unique_id(hub.site_id, camera, HEALTH_TASK, health.kind)] = partial(
                health, hub, camera
            )
    return wanted


class ResultSensor(CameraEntity, SensorEntity):
    """The latest result of one camera and task (restored from the bridge's retained result)."""

    # frame id, times and latency change with every frame: shown, but not written to the recorder
    _unrecorded_attributes = PER_FRAME_ATTRIBUTES

    def __init__(self, hub: ImageToTextHub, camera: str, task: str) -> None:
        super().__init__(hub, camera, task, "text")
        self._use_task_name()

    @property
    def result(self) -> dict[str, Any] | None:
        """The latest result, or None before the first one."""
        return self.hub.last_result.get((self.camera, self.task))

    async def async_added_to_hass(self) -> None:
        """Follow the camera's results."""
        await super().async_added_to_hass()
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_state(self.hub.entry.entry_id), self._on_result
            )
        )

    @callback
    def _on_result(self, camera: str, task: str) -> None:
        if (camera, task) == (self.camera, self.task):
            self.async_write_ha_state()

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Where the text came from: model, latency, frame id, capture time."""
        result = self.result
        if result is None:
            return None
        attributes = {key: result.get(key) for key in RESULT_ATTRIBUTES}
        if isinstance(result.get("bridge_id"), str):
            attributes["bridge_id"] = result["bridge_id"]  # which bridge of a group answered
        attributes.update(self._more_attributes(result))
        return fit(attributes, MAX_ATTRIBUTES_BYTES)

    def _more_attributes(self, _result: dict[str, Any]) -> dict[str, Any]:
        return {}


class TextSensor(ResultSensor):
    """A caption or OCR text."""

    @property
    def native_value(self) -> str | None:
        """The text, cut to what a state can hold."""
        result = self.result
        return None if result is None else str(result["text"])[:MAX_STATE_LENGTH]

    def _more_attributes(self, result: dict[str, Any]) -> dict[str, Any]:
        more: dict[str, Any] = {}
        if len(result["text"]) > MAX_STATE_LENGTH:
            more["full_text"] = result["text"]
        if self.task == TASK_OCR or "lines" in result:
            more["lines"] = result.get("lines", [])
        return more


class MeterSensor(ResultSensor):
    """A meter's reading: a number with the unit and device class the bridge was configured with."""

    _attr_state_class = SensorStateClass.TOTAL_INCREASING

    def __init__(self, hub: ImageToTextHub, camera: str, task: str) -> None:
        super().__init__(hub, camera, task)
        self._apply_meter_settings()

    def _apply_meter_settings(self) -> None:
        """Unit, device class and precision: the info's meter settings, else the result's.

        The bridge puts them in both; a bridge whose info lists only the tasks still gives a
        sensor the Energy dashboard accepts once its first reading arrives.
        """
        meter = self.hub.cameras.get(self.camera, {}).get("meter") or {}
        result = self.result or {}

        def setting(key: str) -> Any:
            value = meter.get(key)
            return result.get(key) if value is None else value

        unit = setting("unit")
        self._attr_native_unit_of_measurement = unit if isinstance(unit, str) else None
        self._attr_device_class = None
        with suppress(ValueError, TypeError):
            self._attr_device_class = SensorDeviceClass(setting("device_class"))
        decimals = meter.get("decimals")
        self._attr_suggested_display_precision = decimals if isinstance(decimals, int) else None

    @callback
    def _handle_info(self) -> None:
        self._apply_meter_settings()

    @callback
    def _on_result(self, camera: str, task: str) -> None:
        if (camera, task) == (self.camera, self.task):
            self._apply_meter_settings()
            self.async_write_ha_state()

    @property
    def native_value(self) -> float | None:
        """The reading, decimals placed."""
        result = self.result
        return None if result is None else float(result["value"])

    def _more_attributes(self, result: dict[str, Any]) -> dict[str, Any]:
        return {key: result[key] for key in METER_ATTRIBUTES if key in result}


class HealthSensor(CameraEntity, SensorEntity):
    """One of the bridge's counters of a camera (from its info), a diagnostic."""

    _attr_entity_category = EntityCategory.DIAGNOSTIC
    # counters for troubleshooting: off until a user wants them (Settings > Entities)
    _attr_entity_registry_enabled_default = False
    kind: str
    counter: str

    def __init__(self, hub: ImageToTextHub, camera: str) -> None:
        super().__init__(hub, camera, HEALTH_TASK, self.kind)

    def still_provided(self) -> bool:
        """Health sensors stay as long as the camera does."""
        return self.camera in self.hub.cameras

    @property
    def native_value(self) -> float | None:
        """The counter's value in the bridge's latest info."""
        value = self.hub.counters(self.camera).get(self.counter)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return value


class LatencySensor(HealthSensor):
    """How long the camera's last frame took, from reception to published result."""

    kind = "latency"
    counter = "latency_ms"
    _attr_translation_key = "model_latency"
    _attr_device_class = SensorDeviceClass.DURATION
    _attr_native_unit_of_measurement = UnitOfTime.MILLISECONDS
    _attr_state_class = SensorStateClass.MEASUREMENT
    _attr_suggested_display_precision = 0


class SupersededSensor(HealthSensor):
    """Frames replaced by a newer frame before the model got to them (since the bridge started)."""

    kind = "superseded"
    counter = "superseded"
    _attr_translation_key = "frames_superseded"
    _attr_state_class = SensorStateClass.TOTAL_INCREASING


class RefusedSensor(HealthSensor):
    """Frames that ended as an error event (since the bridge started)."""

    kind = "refused"
    counter = "errors"
    _attr_translation_key = "frames_refused"
    _attr_state_class = SensorStateClass.TOTAL_INCREASING


HEALTH_SENSORS: tuple[type[HealthSensor], ...] = (LatencySensor, SupersededSensor, RefusedSensor)
