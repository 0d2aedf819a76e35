"""Which provider and upstream model serve a requested model name.

Apps hard-code names such as ``gpt-4o``. A name with an explicit route goes where the route
says; any other name goes to the default: ``ASSISTANTD_UPSTREAM_BASE_URL`` with
``ASSISTANTD_DEFAULT_MODEL`` (or, when that is unset, the requested name passed through), else
the local model when the ``local`` extra is installed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from assistantd.config import Settings
from assistantd.providers import local
from assistantd.providers.base import Provider, ProviderError
from assistantd.providers.openai_compat import OpenAICompatibleProvider

log = logging.getLogger("assistantd.providers")

NO_MODEL_HELP = (
    "No model is configured. Set ASSISTANTD_UPSTREAM_BASE_URL (and ASSISTANTD_DEFAULT_MODEL) "
    "to an OpenAI-compatible server, or install the local model with pip install "
    "'assistantd[local]'."
)


class NoModelConfigured(ProviderError):
    pass


@dataclass(frozen=True)
class Route:
    provider: Provider
    model: str


class Router:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.providers: dict[str, Provider] = {}
        if settings.upstream_base_url:
            self.providers["upstream"] = OpenAICompatibleProvider(
                "upstream",
                settings.upstream_base_url,
                settings.upstream_api_key,
                context_window=settings.upstream_context_window,
                timeout=settings.upstream_timeout_seconds,
            )
        path = local.bundled_model_path() if local.available() else None
        if path is not None:
            self.providers["local"] = local.LocalProvider(path)
        self.routes: dict[str, tuple[str, str]] = {}
        for name, target in settings.model_routes.items():
            provider, _, model = target.partition(":")
            if provider not in ("upstream", "local"):
                raise ValueError(f"model route {name!r}: provider must be upstream or local")
            self.routes[name] = (
                provider,
                model or (local.MODEL_NAME if provider == "local" else name),
            )

    @property
    def default(self) -> str | None:
        if "upstream" in self.providers:
            return "upstream"
        if "local" in self.providers:
            return "local"
        return None

    def describe(self) -> str:
        default = self.default
        if default is None:
            return NO_MODEL_HELP
        if default == "local":
            return f"Default model: {local.MODEL_NAME} on llama.cpp (local, offline)."
        target = self.settings.default_model or "the requested model name"
        return f"Default model: {target} at {self.settings.upstream_base_url}."

    def resolve(self, requested: str) -> Route:
        if requested in self.routes:
            provider_name, model = self.routes[requested]
            provider = self.providers.get(provider_name)
            if provider is None:
                raise NoModelConfigured(
                    f"Model {requested!r} is routed to {provider_name!r}, which is not configured."
                )
            return Route(provider, model)
        default = self.default
        if default is None:
            raise NoModelConfigured(NO_MODEL_HELP)
        if default == "local":
            return Route(self.providers["local"], local.MODEL_NAME)
        return Route(self.providers["upstream"], self.settings.default_model or requested)

    def model_ids(self) -> list[str]:
        names = list(self.routes)
        if self.default == "upstream" and self.settings.default_model:
            names.append(self.settings.default_model)
        if "local" in self.providers:
            names.append(local.MODEL_NAME)
        return list(dict.fromkeys(names))

    async def close(self) -> None:
        for provider in self.providers.values():
            await provider.close()
