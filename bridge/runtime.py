"""The resources one process shares: settings, the database engine and its sessions.

Created once at start-up (the web app's lifespan, or the worker command) and passed down; nothing
reads the environment or opens an engine anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from bridge.config import Settings
from bridge.db import make_engine, session_factory
from bridge.logging import register_secrets


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session] = field(repr=False)

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        register_secrets(
            [
                settings.api_key.get_secret_value(),
                settings.admin_token.get_secret_value(),
                settings.stripe_api_key.get_secret_value(),
                settings.shopify_admin_token.get_secret_value(),
                *settings.stripe_webhook_secrets,
                *settings.shopify_webhook_secrets,
                *settings.alert_urls,
            ]
        )
        engine = make_engine(
            settings.database_url,
            sqlite_synchronous=settings.sqlite_synchronous,
            busy_timeout=settings.db_busy_timeout,
        )
        return cls(settings=settings, engine=engine, sessions=session_factory(engine))

    def close(self) -> None:
        self.engine.dispose()
