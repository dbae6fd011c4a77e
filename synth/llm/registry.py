"""Providers are found through the `synth.providers` entry-point group, so a new backend is a package
that declares one entry point, not an edit here."""

from __future__ import annotations

from importlib.metadata import entry_points

from synth.llm.base import Provider
from synth.llm.spec import LLMSpec

GROUP = "synth.providers"


def installed_providers() -> dict[str, str]:
    """name -> "module:Class" for every registered provider."""
    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def load_provider(spec: LLMSpec) -> Provider:
    """Construct the provider class registered under `spec.provider` as `cls(spec)`."""
    found = [ep for ep in entry_points(group=GROUP) if ep.name == spec.provider]
    if not found:
        raise ValueError(f"unknown LLM provider {spec.provider!r} (installed: {', '.join(sorted(installed_providers()))})")
    return found[0].load()(spec)
