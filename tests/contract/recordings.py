"""Recorded provider answers kept beside each contract test (``tests/contract/<provider>/``)."""

import json
from pathlib import Path


def recordings(test_file: str):
    """``raw(name)`` (bytes) and ``recorded(name)`` (parsed JSON) of the files recorded in
    ``test_file``'s folder: ``raw, recorded = recordings(__file__)``."""
    folder = Path(test_file).parent

    def raw(name: str) -> bytes:
        return (folder / name).read_bytes()

    def recorded(name: str):
        return json.loads(raw(name))

    return raw, recorded
