"""A file input that refuses a file that is too large in the browser, before sending it.

Panel's ``FileInput`` sends the whole file, base64-encoded, as one websocket
message; a file over the server's message limit closes the connection (the
page stops responding) before any check in Python can run.  This input
compares the file's size with ``max_bytes`` in the browser and sends only the
name and size of a file that is too large, so the app can say so.
"""

from __future__ import annotations

from base64 import b64decode
from typing import Any

import param
from panel.custom import JSComponent

__all__ = ["WEBSOCKET_MAX_MESSAGE_BYTES", "LimitedFileInput", "size_message"]

WEBSOCKET_MAX_MESSAGE_BYTES = 40 * 1024 * 1024
"""The websocket message limit the app is served with (40 MiB).

A file travels base64-encoded (4/3 of its size): the largest upload the app
accepts (a 20 MiB CSV file, about 27 MiB encoded) fits with room to spare.
Bokeh's default is 20 MB.
"""


def size_message(name: str, size: int, limit: int, what: str, advice: str) -> str:
    """Return the message for a file of ``size`` bytes over ``limit`` bytes."""
    return (
        f"{name} is {size / 2**20:.1f} MiB; the app accepts {what} up to "
        f"{limit / 2**20:.0f} MiB. {advice}"
    ).strip()


class LimitedFileInput(JSComponent):
    """Choose one file; it is sent to the server only if at most ``max_bytes``.

    ``filename`` and ``value`` (bytes) are set together when a file arrives;
    a file that is too large calls ``on_refused`` with a message instead.
    """

    accept = param.String(
        default="", doc="Comma-separated file extensions offered, e.g. '.csv,.txt'."
    )
    max_bytes = param.Integer(
        default=12 * 1024 * 1024,
        bounds=(1, WEBSOCKET_MAX_MESSAGE_BYTES * 3 // 4 - 1024 * 1024),
        doc="The largest file sent to the server, in bytes.",
    )
    label = param.String(default="Choose a file", doc="Accessible name of the input.")
    what = param.String(
        default="files", doc="What the input takes, for the message, e.g. 'CSV files'."
    )
    advice = param.String(
        default="", doc="What to do instead, appended to the too-large message."
    )
    filename = param.String(
        default=None, allow_None=True, doc="Name of the last file received."
    )
    value = param.Parameter(
        default=None, doc="Content (bytes) of the last file received."
    )
    on_refused = param.Callable(
        default=None,
        doc="Called with the message when a chosen file is too large.",
    )
    refused = param.String(default="", doc="The message about the last file refused.")

    # Kept in Python only: never sent to the browser.
    _rename = {"value": None, "on_refused": None, "refused": None}

    _esm = """
    export function render({ model, el }) {
      const input = document.createElement("input")
      input.type = "file"
      input.accept = model.accept
      input.setAttribute("aria-label", model.label)
      input.className = "glassnet-file"
      input.addEventListener("change", () => {
        const file = input.files && input.files[0]
        if (!file) return
        if (file.size > model.max_bytes) {
          model.send_msg({name: file.name, size: file.size, refused: true})
          input.value = ""
          return
        }
        const reader = new FileReader()
        reader.onload = () => {
          const url = String(reader.result)
          model.send_msg({name: file.name, size: file.size,
                          data: url.slice(url.indexOf(",") + 1)})
          input.value = ""
        }
        reader.onerror = () => {
          model.send_msg({name: file.name, size: file.size, refused: true,
                          error: String(reader.error)})
          input.value = ""
        }
        reader.readAsDataURL(file)
      })
      model.on("accept", () => { input.accept = model.accept })
      el.appendChild(input)
    }
    """

    def receive(self, msg: dict[str, Any]) -> None:
        """Take a message from the browser: a file's content, or a refusal."""
        name = str(msg.get("name", ""))
        size = int(msg.get("size", 0))
        if msg.get("error"):
            text = f"{name} could not be read: {msg['error']}"
        elif msg.get("refused") or size > self.max_bytes:
            text = size_message(name, size, self.max_bytes, self.what, self.advice)
        else:
            data = b64decode(str(msg.get("data", "")))
            self.param.update(filename=name, value=data)
            return
        self.refused = text
        if self.on_refused is not None:
            self.on_refused(text)

    def clear(self) -> None:
        """Forget the last file, so choosing it again sends it again."""
        self.param.update(value=None, filename=None)

    def _handle_msg(self, msg: Any) -> None:
        if isinstance(msg, dict):
            self.receive(msg)
