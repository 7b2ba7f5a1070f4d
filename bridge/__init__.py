"""image-to-text bridge: camera frames over MQTT become captions and OCR text.

The package is the service half of the project; Home Assistant's half lives in
``custom_components/image_to_text`` and talks to it only through the MQTT protocol
(``docs/protocol.md``).
"""

__version__ = "0.1.0"
