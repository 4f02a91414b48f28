"""Settings, read once from the environment (and an optional ``.env`` file).

Every variable name here is part of the public interface; docs/configuration.md lists them.
A missing or malformed value raises :class:`ConfigError` whose message names the variable;
the CLI prints that one line and exits with status 2.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///./var/bridge.db"
DEFAULT_API_URL = "https://www.facturation.pro"
ONE_MIB = 1024 * 1024
LEASE_PER_TIMEOUT = 4
HEARTBEATS_BEFORE_DEAD = 3

_CONTACT = re.compile(r"[^@\s()<>]+@[^@\s()<>]+\.[a-z]{2,}|https?://\S+", re.IGNORECASE)


class ConfigError(Exception):
    """A configuration value is missing or malformed. ``str()`` is one line naming the variable."""


MASK = "******"
_URL_SETTINGS = frozenset(
    {"BRIDGE_DATABASE_URL", "FACTURATION_API_URL", "STRIPE_API_BASE", "BRIDGE_VIES_URL"}
)


def mask_url(url: str) -> str:
    """``url`` with its password (or a bare user-info token) and every query value masked.

    Errs on the side of masking: a password holding ``@``, ``/``, ``?`` or ``#`` unencoded is
    masked up to the last ``@`` before the host, and a query value is never shown.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    at = rest.rfind("@")
    query = rest.find("?")
    if 0 <= query < at and "@" in rest[:query]:
        at = rest.rfind("@", 0, query)  # the last '@' is a query value's: stop before the query
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        userinfo = f"{user}:{MASK}" if colon else MASK
        rest = userinfo + rest[at:]
        query = rest.find("?", len(userinfo))
    if query >= 0:
        params = rest[query + 1 :].split("&")
        masked = [f"{p.partition('=')[0]}={MASK}" if "=" in p else MASK for p in params if p]
        rest = rest[: query + 1] + "&".join(masked)
    return f"{scheme}://{rest}"


def _split_csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


class Settings(BaseSettings):
    """The bridge's configuration. Field aliases are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        frozen=True,
    )

    # Storage
    database_url: str = Field(DEFAULT_DATABASE_URL, alias="BRIDGE_DATABASE_URL")
    sqlite_synchronous: Literal["FULL", "NORMAL", "EXTRA"] = Field(
        "FULL", alias="BRIDGE_SQLITE_SYNCHRONOUS"
    )
    db_busy_timeout: float = Field(2.0, gt=0, alias="BRIDGE_DB_BUSY_TIMEOUT")

    # Facturation.pro API
    api_url: str = Field(DEFAULT_API_URL, alias="FACTURATION_API_URL")
    api_login: str = Field("", alias="FACTURATION_API_LOGIN")
    api_key: SecretStr = Field(SecretStr(""), alias="FACTURATION_API_KEY")
    firm_id: int | None = Field(None, gt=0, alias="FACTURATION_FIRM_ID")
    user_agent: str = Field("", alias="FACTURATION_USER_AGENT")
    api_timeout: float = Field(30.0, gt=0, alias="FACTURATION_TIMEOUT")
    rate_limit: int = Field(600, gt=0, alias="FACTURATION_RATE_LIMIT")
    rate_window: float = Field(300.0, gt=0, alias="FACTURATION_RATE_WINDOW")
    daily_limit: int = Field(10_000, gt=0, alias="FACTURATION_DAILY_LIMIT")
    quota_reserve: int = Field(0, ge=0, alias="FACTURATION_QUOTA_RESERVE")

    # Webhook sources
    stripe_webhook_secrets_raw: SecretStr = Field(SecretStr(""), alias="STRIPE_WEBHOOK_SECRETS")
    shopify_webhook_secrets_raw: SecretStr = Field(SecretStr(""), alias="SHOPIFY_WEBHOOK_SECRETS")
    shopify_shop_domains_raw: str = Field("", alias="SHOPIFY_SHOP_DOMAINS")
    stripe_tolerance: int = Field(300, gt=0, alias="STRIPE_WEBHOOK_TOLERANCE")
    max_body_bytes: int = Field(ONE_MIB, gt=0, alias="BRIDGE_MAX_BODY_BYTES")

    # Enrichment (mapping stage only, never in the web request)
    stripe_api_key: SecretStr = Field(SecretStr(""), alias="STRIPE_API_KEY")
    stripe_api_base: str = Field("https://api.stripe.com", alias="STRIPE_API_BASE")

    # Backfill and reconcile (bridge/recovery): the Shopify Admin API, rates, the quota share
    shopify_shop_domain: str = Field("", alias="SHOPIFY_SHOP_DOMAIN")
    shopify_admin_token: SecretStr = Field(SecretStr(""), alias="SHOPIFY_ADMIN_TOKEN")
    shopify_api_version: str = Field("2025-10", alias="SHOPIFY_API_VERSION")
    shopify_admin_url: str = Field("", alias="SHOPIFY_ADMIN_URL")
    stripe_backfill_rate: float = Field(20.0, gt=0, le=100, alias="STRIPE_BACKFILL_RATE")
    reconcile_quota_share: float = Field(0.5, gt=0, le=1, alias="BRIDGE_RECONCILE_QUOTA_SHARE")

    # Admin, mappings, merchant
    admin_token: SecretStr = Field(SecretStr(""), alias="BRIDGE_ADMIN_TOKEN")
    metrics_public: bool = Field(False, alias="BRIDGE_METRICS_PUBLIC")
    mappings_dir: Path | None = Field(None, alias="BRIDGE_MAPPINGS_DIR")
    timezone_name: str = Field("Europe/Paris", alias="BRIDGE_TIMEZONE")
    vat_regime: Literal["normal", "franchise"] = Field("normal", alias="BRIDGE_VAT_REGIME")
    oss: bool = Field(False, alias="BRIDGE_OSS")
    zero_vat_mention: str = Field("", max_length=255, alias="BRIDGE_ZERO_VAT_MENTION")
    line_nature: Literal["none", "bic", "bnc"] = Field("none", alias="BRIDGE_LINE_NATURE")
    vies_url: str = Field("", alias="BRIDGE_VIES_URL")
    vies_timeout: float = Field(10.0, gt=0, alias="BRIDGE_VIES_TIMEOUT")

    # Delivery
    retry_base_seconds: float = Field(2.0, gt=0, alias="BRIDGE_RETRY_BASE_SECONDS")
    retry_max_delay_seconds: float = Field(3600.0, gt=0, alias="BRIDGE_RETRY_MAX_DELAY_SECONDS")
    retry_give_up_seconds: float = Field(3 * 86400.0, gt=0, alias="BRIDGE_RETRY_GIVE_UP_SECONDS")
    lease_seconds: float = Field(120.0, gt=0, alias="BRIDGE_LEASE_SECONDS")
    dependency_wait_seconds: float = Field(
        7 * 86400.0, gt=0, alias="BRIDGE_DEPENDENCY_WAIT_SECONDS"
    )
    customer_lookup_by_email: bool = Field(True, alias="BRIDGE_CUSTOMER_LOOKUP_BY_EMAIL")
    poll_interval: float = Field(0.2, gt=0, alias="BRIDGE_POLL_INTERVAL")
    worker_max_restarts: int = Field(5, ge=0, alias="BRIDGE_WORKER_MAX_RESTARTS")
    shape_confirmations: int = Field(20, ge=0, alias="BRIDGE_SHAPE_CONFIRMATIONS")
    heartbeat_seconds: float = Field(2.0, gt=0, alias="BRIDGE_HEARTBEAT_SECONDS")
    worker_dead_after: float = Field(10.0, gt=0, alias="BRIDGE_WORKER_DEAD_AFTER")

    # Web server (serve and web): slow and hostile clients, shutdown
    http_header_timeout: float = Field(10.0, gt=0, alias="BRIDGE_HTTP_HEADER_TIMEOUT")
    http_body_timeout: float = Field(20.0, gt=0, alias="BRIDGE_HTTP_BODY_TIMEOUT")
    http_keep_alive_timeout: float = Field(5.0, gt=0, alias="BRIDGE_HTTP_KEEP_ALIVE_TIMEOUT")
    http_max_connections: int = Field(2048, gt=0, alias="BRIDGE_HTTP_MAX_CONNECTIONS")
    http_max_header_bytes: int = Field(16384, ge=1024, alias="BRIDGE_HTTP_MAX_HEADER_BYTES")
    http_shutdown_timeout: float = Field(30.0, gt=0, alias="BRIDGE_HTTP_SHUTDOWN_TIMEOUT")

    # Alerts (bridge/watch/)
    alert_urls_raw: SecretStr = Field(SecretStr(""), alias="BRIDGE_ALERT_URLS")
    alert_interval_seconds: float = Field(60.0, gt=0, alias="BRIDGE_ALERT_INTERVAL_SECONDS")
    alert_repeat_seconds: float = Field(6 * 3600.0, gt=0, alias="BRIDGE_ALERT_REPEAT_SECONDS")
    alert_backlog_seconds: float = Field(3600.0, gt=0, alias="BRIDGE_ALERT_BACKLOG_SECONDS")
    silence_hours: float = Field(24.0, ge=0, alias="BRIDGE_SILENCE_HOURS")
    endpoint_check_seconds: float = Field(3600.0, ge=0, alias="BRIDGE_ENDPOINT_CHECK_SECONDS")
    public_url: str | None = Field(None, alias="BRIDGE_PUBLIC_URL")

    # Logging
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", alias="BRIDGE_LOG_LEVEL"
    )
    log_format: Literal["auto", "json", "console"] = Field("auto", alias="BRIDGE_LOG_FORMAT")

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:// or postgresql://")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(
                "must be the bridge's public https:// URL, e.g. https://bridge.example.com"
            )
        return value.rstrip("/") if value else None

    @field_validator("api_url", "stripe_api_base")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("user_agent")
    @classmethod
    def _contact_in_user_agent(cls, value: str) -> str:
        if not value:
            return value  # required only to call the API: see require_api()
        if not value.isascii():
            raise ValueError("must not contain accented or other non-ASCII characters")
        if not _CONTACT.search(value):
            raise ValueError(
                "must contain a contact e-mail address or URL, e.g. 'MyShop (me@shop.fr)'"
            )
        return value

    @field_validator("timezone_name")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("shopify_admin_url", "vies_url")
    @classmethod
    def _optional_http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("shopify_shop_domain")
    @classmethod
    def _shop_domain(cls, value: str) -> str:
        if "/" in value or " " in value:
            raise ValueError(f"{value!r} is not a shop domain like my-shop.myshopify.com")
        return value.lower()

    @field_validator("shopify_shop_domains_raw")
    @classmethod
    def _domains(cls, value: str) -> str:
        for domain in _split_csv(value):
            if "/" in domain or " " in domain:
                raise ValueError(f"{domain!r} is not a shop domain like my-shop.myshopify.com")
        return value

    @model_validator(mode="after")
    def _lease_outlasts_a_call(self) -> Settings:
        # One API call can take its connect, write and read timeouts (and a pool wait) in a row; a
        # lease shorter than that lets a second worker take over a call still in progress.
        floor = LEASE_PER_TIMEOUT * self.api_timeout
        if self.lease_seconds < floor:
            raise ValueError(
                f"BRIDGE_LEASE_SECONDS: must be at least {LEASE_PER_TIMEOUT} x FACTURATION_TIMEOUT"
                f" ({floor:g} s with FACTURATION_TIMEOUT={self.api_timeout:g})"
            )
        return self

    @model_validator(mode="after")
    def _dead_after_spans_heartbeats(self) -> Settings:
        # A worker is presumed dead after this silence: it must span a few heartbeats, so that
        # one late write (a busy database, a loaded host) does not release a live worker's claims.
        floor = HEARTBEATS_BEFORE_DEAD * self.heartbeat_seconds
        if self.worker_dead_after < floor:
            raise ValueError(
                f"BRIDGE_WORKER_DEAD_AFTER: must be at least {HEARTBEATS_BEFORE_DEAD} x"
                f" BRIDGE_HEARTBEAT_SECONDS ({floor:g} s with"
                f" BRIDGE_HEARTBEAT_SECONDS={self.heartbeat_seconds:g})"
            )
        return self

    @cached_property
    def stripe_webhook_secrets(self) -> tuple[str, ...]:
        return _split_csv(self.stripe_webhook_secrets_raw.get_secret_value())

    @cached_property
    def shopify_webhook_secrets(self) -> tuple[str, ...]:
        return _split_csv(self.shopify_webhook_secrets_raw.get_secret_value())

    @cached_property
    def alert_urls(self) -> tuple[str, ...]:
        return _split_csv(self.alert_urls_raw.get_secret_value())

    @cached_property
    def shopify_shop_domains(self) -> frozenset[str]:
        return frozenset(d.lower() for d in _split_csv(self.shopify_shop_domains_raw))

    @cached_property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    @property
    def firm_name(self) -> str:
        """The firm invoices are issued in: its confirmed shapes and its sequence are its own."""
        return f"{self.api_url.rstrip('/')}/firms/{self.firm_id or 0}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def quota_per_window(self) -> int:
        """Requests per window this bridge may use: the limit minus the reserve for other users."""
        return max(1, self.rate_limit - self.quota_reserve)

    @property
    def quota_per_day(self) -> int:
        scaled = self.quota_reserve * self.daily_limit // self.rate_limit
        return max(1, self.daily_limit - scaled)

    @property
    def shopify_graphql_url(self) -> str:
        """The Admin GraphQL endpoint: ``SHOPIFY_ADMIN_URL`` (else the shop) + the API version."""
        base = self.shopify_admin_url or f"https://{self.shopify_shop_domain}"
        return f"{base}/admin/api/{self.shopify_api_version}/graphql.json"

    def require_api(self) -> None:
        """Raise :class:`ConfigError` unless everything needed to call the API is set."""
        if not self.api_login:
            raise ConfigError("FACTURATION_API_LOGIN: required to call the Facturation.pro API")
        if not self.api_key.get_secret_value():
            raise ConfigError("FACTURATION_API_KEY: required to call the Facturation.pro API")
        if self.firm_id is None:
            raise ConfigError("FACTURATION_FIRM_ID: required to call the Facturation.pro API")
        if not self.user_agent:
            raise ConfigError(
                "FACTURATION_USER_AGENT: required, with a contact e-mail, e.g. 'MyShop (me@shop.fr)'"
            )

    def masked(self) -> dict[str, str]:
        """The effective configuration by variable name, secrets masked (for ``check-config``)."""
        out: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            key = field.alias or name
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                n = len(_split_csv(secret)) if key.endswith("_SECRETS") else int(bool(secret))
                out[key] = f"{MASK} ({n} set)" if secret else "(not set)"
            elif key in _URL_SETTINGS:
                out[key] = mask_url(str(value))
            else:
                out[key] = "(not set)" if value is None else str(value)
        return out


def _describe(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    loc = error.get("loc")
    if not loc:  # a check across variables: its message starts with the variable's name
        return message
    name = str(loc[0])
    field = Settings.model_fields.get(name)
    variable = field.alias if field is not None and field.alias else name
    return f"{variable}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the settings; raise :class:`ConfigError` naming the first bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(dict(exc.errors()[0]))) from None
