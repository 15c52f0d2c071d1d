"""`cio-flows emulator`: the emulator's own command line (cio_flows/emulator/command.py), which
`python -m cio_flows.emulator` runs too, so the two cannot drift apart."""

from __future__ import annotations

from ..emulator.command import emulator, emulator_behaviour, family_settings

__all__ = ["emulator", "emulator_behaviour", "family_settings"]
