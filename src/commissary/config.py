"""Settings: one typed object read from the environment (and a `.env` file)."""

from __future__ import annotations

from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

KNOWN_DEFAULT_SECRETS = frozenset(
    {"", "changethis", "change-me", "changeme", "secret", "secret-key"}
)


class Settings(BaseSettings):
    """Every knob of Commissary. Unset means the embedded default."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./commissary.db"
    redis_url: str | None = None
    secret_key: SecretStr | None = Field(
        None, description="unset in development: a random key kept beside the SQLite file"
    )
    access_token_ttl: int = Field(900, gt=0, description="seconds")
    refresh_token_ttl: int = Field(14 * 24 * 3600, gt=0, description="seconds")
    verification_code_ttl: int = Field(24 * 3600, gt=0, description="seconds")
    verification_max_attempts: int = Field(5, gt=0)
    unverified_user_ttl: int = Field(2 * 24 * 3600, gt=0, description="seconds")
    purge_interval: int = Field(3600, gt=0, description="seconds between purges")
    outbox_relay_interval: int = Field(
        30, gt=0, description="seconds between two re-sends of jobs whose dispatch was lost"
    )
    public_url: str = "http://127.0.0.1:8000"
    kitchen_min_seconds: float = Field(1.0, ge=0, description="simulated kitchen, shortest")
    kitchen_max_seconds: float = Field(5.0, ge=0, description="simulated kitchen, longest")

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_timeout: float = 10.0
    mail_from: str = "Commissary <no-reply@commissary.local>"

    admin_email: str | None = None
    admin_password: SecretStr | None = None

    login_max_failures_per_account: int = Field(5, gt=0)
    login_failure_window: int = Field(900, gt=0, description="seconds")
    login_max_failures_per_client: int = Field(30, gt=0, description="failed logins per address")
    login_client_window: int = Field(60, gt=0, description="seconds")
    # Abuse limits: registrations per client address, and request body sizes (bytes).
    register_max_per_client: int = Field(10, gt=0)
    register_client_window: int = Field(3600, gt=0, description="seconds")
    max_json_body_bytes: int = Field(1024 * 1024, gt=0, description="any non-multipart body")
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0, description="multipart/form-data")

    log_format: Literal["json", "console"] | None = None
    log_level: str = "INFO"
    cors_origins: Annotated[list[str], NoDecode] = []
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="addresses or networks of the proxies whose X-Forwarded-For is believed",
    )
    db_pool_size: int = Field(20, gt=0)
    db_max_overflow: int = Field(0, ge=0)
    max_concurrent_requests: int = Field(
        32, gt=0, description="requests one process runs at once; the others wait their turn"
    )
    request_queue_timeout: float = Field(
        10.0, gt=0, description="seconds a request waits for its turn, then 503"
    )
    db_pool_timeout: float = Field(
        5.0, gt=0, description="seconds a request waits for a pooled connection, then 503"
    )

    # Orders: abuse ceilings per member and per order.
    order_rate_limit: int = Field(120, gt=0, description="orders a member may place per window")
    order_rate_window: int = Field(60, gt=0, description="seconds")
    order_max_quantity: int = Field(100, gt=0, description="units of one line")
    order_max_total: Decimal = Field(Decimal("10000"), gt=0, description="an order's total")
    order_batch_size: int = Field(200, gt=0, description="orders a worker processes at once")
    order_sweep_interval: int = Field(1, gt=0, description="seconds between order sweeps")
    worker_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="CPU niceness `commissary worker` and `commissary scheduler` take at start "
        "(0: the inherited one): on a machine shared with the api, requests come first",
    )
    job_wake_delay: float = Field(
        0.1,
        ge=0,
        le=5,
        description="seconds a request's wake-up of a batch job (order processing, the event "
        "sequencer) waits before it is queued, so the orders of that moment share one run",
    )
    event_sequence_interval: int = Field(
        5, gt=0, description="seconds between runs of the event stream's sequencer"
    )
    accept_timeout: int = Field(
        300, gt=0, description="seconds a manual kitchen's order may wait before an alert"
    )
    accept_cancel_after: int = Field(
        300, ge=0, description="seconds after the alert before an unaccepted order is cancelled"
    )
    # Deliveries: how often a courier may send their position (429 beyond).
    delivery_location_rate_limit: int = Field(
        60, gt=0, description="positions a courier may send per window"
    )
    delivery_location_rate_window: int = Field(60, gt=0, description="seconds")
    order_mail_staff: bool = Field(
        True, description="mail the admins and the restaurant's owners about each accepted order"
    )
    notification_mail: bool = Field(
        True,
        description="e-mail customers the notifications that matter most (order accepted, "
        "rejected, on its way), besides the in-app ones",
    )
    # `Idempotency-Key` on order placement and checkout (see `core.idempotency`).
    idempotency_key_ttl: int = Field(
        24 * 3600, gt=0, description="seconds a key and its stored answer are kept"
    )
    idempotency_lease: int = Field(
        60, gt=0, description="seconds after which an unfinished claim may be taken over"
    )
    idempotency_purge_interval: int = Field(
        3600, gt=0, description="seconds between two purges of expired keys"
    )

    # Public menu answers (products, categories, restaurants), read through a cache: Redis
    # when REDIS_URL is set, else an in-process LRU bounded by CACHE_MAX_BYTES.
    cache_enabled: bool = True
    cache_ttl: int = Field(300, gt=0, description="seconds a cached menu answer lives")
    cache_max_bytes: int = Field(64 * 2**20, gt=0, description="in-process cache size bound")

    # Identity: password hashing cost and pool, e-mail domains.
    password_hash_time_cost: int = Field(3, ge=1, description="argon2 passes")
    password_hash_memory_cost: int = Field(65536, ge=1024, description="argon2 KiB")
    password_hash_workers: int = Field(2, gt=0, description="threads hashing passwords")
    allow_reserved_email_domains: bool = Field(
        False, description="accept .local, .test, localhost... addresses (intranets)"
    )

    # The brand shown by GET /info (the locations are the active restaurants).
    brand_name: str = "Commissary"
    brand_description: str = ""
    brand_email: str | None = None
    brand_phone: str | None = None
    brand_website: str | None = None

    # Product images: where they are stored (served at /media/), and what is accepted.
    media_dir: Path = Path("./media")
    image_max_bytes: int = Field(5 * 1024 * 1024, gt=0, description="bytes of one upload")
    image_max_pixels: int = Field(
        25_000_000, gt=0, description="width x height; larger images are refused undecoded"
    )

    # Realtime (WebSocket) and the support chat.
    dashboard_node_modules: Path | None = Field(
        None,
        description="the node_modules folder /dashboard serves Chart.js from; default: the "
        "checkout's, filled by scripts/bootstrap",
    )
    metrics_token: SecretStr | None = Field(
        None, description="bearer token a Prometheus scraper sends to GET /metrics"
    )
    ws_ticket_ttl: int = Field(60, gt=0, description="seconds a WebSocket ticket is valid")
    realtime_send_queue: int = Field(
        256, gt=0, description="frames waiting for one slow socket before it is closed (4408)"
    )
    support_message_rate_limit: int = Field(
        30, gt=0, description="support messages a member may send per window"
    )
    support_message_rate_window: int = Field(60, gt=0, description="seconds")

    # Integrators' API keys (`X-API-Key`): a key's limits default to these and are capped.
    api_key_rate_limit_per_minute: int = Field(60, gt=0, description="a new key's requests/min")
    api_key_daily_quota: int = Field(10_000, gt=0, description="a new key's requests per UTC day")
    api_key_max_rate_limit_per_minute: int = Field(
        600, gt=0, description="the highest per-minute limit a key may be given"
    )
    api_key_max_daily_quota: int = Field(
        1_000_000, gt=0, description="the highest daily quota a key may be given"
    )
    api_keys_per_member: int = Field(20, gt=0, description="unrevoked keys one member may hold")
    api_key_usage_flush_interval: float = Field(
        10.0, gt=0, description="seconds between two writes of the keys' usage counts"
    )
    # Webhooks: how deliveries are sent and retried, and which receivers are accepted.
    webhook_timeout: float = Field(
        5.0, gt=0, le=60, description="seconds to connect, send and get an answer"
    )
    webhook_retry_backoff: Annotated[list[int], NoDecode] = Field(
        [5, 30, 120, 600, 3600],
        description="seconds before each retry of a failed delivery; one retry per entry",
    )
    webhook_allow_loopback: bool | None = Field(
        None,
        description="accept receivers on loopback addresses, over http too "
        "(unset: only in development)",
    )

    api_docs: bool = Field(True, description="serve /docs, /redoc and /openapi.json")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("webhook_retry_backoff", mode="before")
    @classmethod
    def _split_backoff(cls, value: object) -> object:
        if isinstance(value, str):
            return [int(part) for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_retry_backoff")
    @classmethod
    def _backoff_not_negative(cls, value: list[int]) -> list[int]:
        if any(seconds < 0 for seconds in value):
            raise ValueError("WEBHOOK_RETRY_BACKOFF takes seconds, none negative")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        """Accept the usual `postgresql://` and `sqlite://` URLs and pick the async driver."""
        for plain, driver in (
            ("postgres://", "postgresql+asyncpg://"),
            ("postgresql://", "postgresql+asyncpg://"),
            ("sqlite://", "sqlite+aiosqlite://"),
        ):
            if value.startswith(plain):
                return driver + value[len(plain) :]
        return value

    @field_validator(
        "redis_url",
        "smtp_host",
        "admin_email",
        "secret_key",
        "metrics_token",
        "brand_email",
        "brand_phone",
        "brand_website",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("METRICS_TOKEN must be a random value of at least 24 characters")
        return value

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> Settings:
        if self.environment == "development" and self.secret_key is None:
            return self  # a random key, kept beside the database (core.security)
        secret = self.secret_key.get_secret_value() if self.secret_key else ""
        if self.environment != "development" and (
            secret.strip().lower() in KNOWN_DEFAULT_SECRETS or len(secret) < 32
        ):
            raise ValueError(
                "SECRET_KEY must be set to a random value of at least 32 characters outside "
                "development (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`)"
            )
        return self

    @model_validator(mode="after")
    def _key_defaults_within_caps(self) -> Settings:
        if self.api_key_rate_limit_per_minute > self.api_key_max_rate_limit_per_minute:
            raise ValueError(
                "API_KEY_RATE_LIMIT_PER_MINUTE exceeds API_KEY_MAX_RATE_LIMIT_PER_MINUTE"
            )
        if self.api_key_daily_quota > self.api_key_max_daily_quota:
            raise ValueError("API_KEY_DAILY_QUOTA exceeds API_KEY_MAX_DAILY_QUOTA")
        return self

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def webhooks_reach_loopback(self) -> bool:
        """Whether webhook receivers may live on loopback (over http too)."""
        if self.webhook_allow_loopback is None:
            return self.environment == "development"
        return self.webhook_allow_loopback

    @cached_property
    def resolved_log_format(self) -> str:
        if self.log_format:
            return self.log_format
        return "console" if self.environment == "development" else "json"
