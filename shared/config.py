"""All configuration, read from the environment in one place.

Every variable is listed in the README's configuration table. Code never reads
``os.environ`` directly: it calls :func:`settings`, so a reader finds every knob here
and tests can change the environment and :func:`reload`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from shared.client_address import Network, networks

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"config: {name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SystemExit(f"config: {name} must be a number, got {raw!r}") from exc


def _list(name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in os.environ.get(name, "").split(",") if part.strip())


def _database_url() -> str:
    for name in ("DATABASE_URL", "NETLIFY_DB_URL", "NETLIFY_DATABASE_URL"):
        value = _str(name)
        if value:
            return value
    return ""


@dataclass(frozen=True)
class Settings:
    build: str = field(default_factory=lambda: _str("KAIXU_BUILD", "dev"))
    port: int = field(default_factory=lambda: _int("PORT", 8888))
    data_dir: Path = field(
        default_factory=lambda: Path(_str("KAIXU_DATA_DIR") or PROJECT_ROOT / ".data").resolve()
    )
    database_url: str = field(default_factory=_database_url)
    db_pool_max: int = field(default_factory=lambda: _int("DB_POOL_MAX", 5))
    db_timeout_s: float = field(default_factory=lambda: _float("DB_TIMEOUT_S", 5.0))

    environment: str = field(default_factory=lambda: _str("KAIXU_ENV", "production").lower())
    client_ip_header: str = field(
        default_factory=lambda: (_str("CLIENT_IP_HEADER") or "x-forwarded-for").lower()
    )
    trusted_proxies: tuple[Network, ...] = field(
        default_factory=lambda: networks(_list("TRUSTED_PROXIES") or ("127.0.0.1", "::1"))
    )
    allowed_origins: tuple[str, ...] = field(default_factory=lambda: _list("ALLOWED_ORIGINS"))
    max_body_bytes: int = field(default_factory=lambda: _int("MAX_BODY_BYTES", 1024 * 1024))

    admin_password: str = field(default_factory=lambda: _str("ADMIN_PASSWORD"))
    admin_token_secret: str = field(default_factory=lambda: _str("ADMIN_TOKEN_SECRET"))
    admin_token_ttl_s: int = field(default_factory=lambda: _int("ADMIN_TOKEN_TTL_S", 8 * 3600))
    admin_login_global_budget: int = field(default_factory=lambda: _int("ADMIN_LOGIN_GLOBAL_BUDGET", 100))
    customer_session_ttl_s: int = field(default_factory=lambda: _int("CUSTOMER_SESSION_TTL_S", 3600))
    portal_max_keys: int = field(default_factory=lambda: _int("PORTAL_MAX_KEYS", 25))
    key_pepper: str = field(default_factory=lambda: _str("KEY_PEPPER"))

    default_rpm_limit: int = field(default_factory=lambda: _int("DEFAULT_RPM_LIMIT", 120))
    default_max_concurrent: int = field(default_factory=lambda: _int("DEFAULT_MAX_CONCURRENT", 32))

    openai_base_url: str = field(
        default_factory=lambda: _str("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
    )
    anthropic_base_url: str = field(
        default_factory=lambda: _str("ANTHROPIC_BASE_URL", "https://api.anthropic.com").rstrip("/")
    )
    gemini_base_url: str = field(
        default_factory=lambda: _str("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com").rstrip(
            "/"
        )
    )
    openai_api_key: str = field(default_factory=lambda: _str("OPENAI_API_KEY"))
    anthropic_api_key: str = field(default_factory=lambda: _str("ANTHROPIC_API_KEY"))
    gemini_api_key: str = field(default_factory=lambda: _str("GEMINI_API_KEY"))
    upstream_timeout_s: float = field(default_factory=lambda: _float("UPSTREAM_TIMEOUT_S", 120.0))
    upstream_max_connections: int = field(default_factory=lambda: _int("UPSTREAM_MAX_CONNECTIONS", 200))
    settle_retry_s: float = field(default_factory=lambda: _float("SETTLE_RETRY_S", 10.0))
    stream_ping_s: float = field(default_factory=lambda: _float("STREAM_PING_S", 15.0))
    stream_usage_wait_s: float = field(default_factory=lambda: _float("STREAM_USAGE_WAIT_S", 10.0))
    stream_write_timeout_s: float = field(default_factory=lambda: _float("STREAM_WRITE_TIMEOUT_S", 30.0))
    # The demo provider (shared/providers/demo.py): asked for by the dev server, honoured only
    # in development and never on AWS Lambda (see ``demo_enabled``).
    demo: bool = field(default_factory=lambda: _str("KAIXU_DEMO") == "1")
    demo_word_delay_s: float = field(default_factory=lambda: _float("KAIXU_DEMO_WORD_DELAY_S", 0.04))
    on_aws_lambda: bool = field(default_factory=lambda: bool(_str("AWS_LAMBDA_FUNCTION_NAME")))
    # Caps that fit the call (see the README's money section): a stream's reservation is a
    # lease of output tokens, taken and extended in steps; a call the month cannot afford
    # whole is clamped to what it can, never below the minimum.
    lease_step_tokens: int = field(default_factory=lambda: _int("LEASE_STEP_TOKENS", 256))
    clamp_min_tokens: int = field(default_factory=lambda: _int("CLAMP_MIN_TOKENS", 16))

    maintenance_secret: str = field(default_factory=lambda: _str("KAIXU_MAINTENANCE_SECRET"))
    client_error_token: str = field(default_factory=lambda: _str("CLIENT_ERROR_TOKEN"))
    client_error_per_min: int = field(default_factory=lambda: _int("CLIENT_ERROR_PER_MIN", 30))
    client_error_global_per_min: int = field(default_factory=lambda: _int("CLIENT_ERROR_GLOBAL_PER_MIN", 300))
    monitor_retention_days: int = field(default_factory=lambda: _int("MONITOR_RETENTION_DAYS", 30))

    stripe_secret_key: str = field(default_factory=lambda: _str("STRIPE_SECRET_KEY"))
    stripe_webhook_secret: str = field(default_factory=lambda: _str("STRIPE_WEBHOOK_SECRET"))
    stripe_currency: str = field(default_factory=lambda: _str("STRIPE_CURRENCY", "usd").lower())
    stripe_api_base: str = field(
        default_factory=lambda: _str("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
    )
    stripe_timeout_s: float = field(default_factory=lambda: _float("STRIPE_TIMEOUT_S", 20.0))
    stripe_success_url: str = field(default_factory=lambda: _str("STRIPE_SUCCESS_URL"))
    stripe_cancel_url: str = field(default_factory=lambda: _str("STRIPE_CANCEL_URL"))
    public_app_origin: str = field(
        default_factory=lambda: _str("PUBLIC_APP_ORIGIN", "http://127.0.0.1:8888").rstrip("/")
    )

    # Who issues the invoices (the printable invoice's header); the address takes "\n" for lines.
    operator_name: str = field(default_factory=lambda: _str("OPERATOR_NAME") or "Kaixu Gateway")
    operator_address: str = field(default_factory=lambda: _str("OPERATOR_ADDRESS").replace("\\n", "\n"))
    operator_email: str = field(default_factory=lambda: _str("OPERATOR_EMAIL"))

    # "kid:base64-32-byte-key" entries, comma separated; the LAST entry encrypts new secrets.
    encryption_keys: tuple[str, ...] = field(default_factory=lambda: _list("KAIXU_ENCRYPTION_KEYS"))
    cap_warn_pct: int = field(default_factory=lambda: _int("CAP_WARN_PCT", 85))
    alert_webhook_url: str = field(default_factory=lambda: _str("ALERT_WEBHOOK_URL"))
    alert_webhook_secret: str = field(default_factory=lambda: _str("ALERT_WEBHOOK_SECRET"))

    # KaixuPush: deploys to Netlify through the gateway (shared/kaixupush).
    netlify_api_base: str = field(
        default_factory=lambda: _str("NETLIFY_API_BASE", "https://api.netlify.com/api/v1").rstrip("/")
    )
    netlify_auth_token: str = field(default_factory=lambda: _str("NETLIFY_AUTH_TOKEN"))
    netlify_timeout_s: float = field(default_factory=lambda: _float("NETLIFY_TIMEOUT_S", 60.0))
    netlify_max_attempts: int = field(default_factory=lambda: _int("NETLIFY_MAX_ATTEMPTS", 4))
    netlify_retry_max_wait_s: float = field(default_factory=lambda: _float("NETLIFY_RETRY_MAX_WAIT_S", 15.0))
    kaixupush_deploys_per_min: int = field(default_factory=lambda: _int("KAIXUPUSH_DEPLOYS_PER_MIN", 3))
    kaixupush_deploys_per_day: int = field(default_factory=lambda: _int("KAIXUPUSH_DEPLOYS_PER_DAY", 100))
    kaixupush_part_bytes: int = field(default_factory=lambda: _int("KAIXUPUSH_PART_BYTES", 4 * 1024 * 1024))
    kaixupush_manifest_max_bytes: int = field(
        default_factory=lambda: _int("KAIXUPUSH_MANIFEST_MAX_BYTES", 8 * 1024 * 1024)
    )
    kaixupush_poll_interval_s: float = field(default_factory=lambda: _float("KAIXUPUSH_POLL_INTERVAL_S", 1.5))
    kaixupush_prepare_timeout_s: float = field(
        default_factory=lambda: _float("KAIXUPUSH_PREPARE_TIMEOUT_S", 60.0)
    )
    kaixupush_s3_bucket: str = field(default_factory=lambda: _str("KAIXUPUSH_S3_BUCKET"))
    kaixupush_s3_prefix: str = field(default_factory=lambda: _str("KAIXUPUSH_S3_PREFIX", "kaixupush/"))
    kaixupush_s3_endpoint_url: str = field(default_factory=lambda: _str("KAIXUPUSH_S3_ENDPOINT_URL"))
    kaixupush_worker_secret: str = field(default_factory=lambda: _str("KAIXUPUSH_WORKER_SECRET"))
    kaixupush_job_max_attempts: int = field(default_factory=lambda: _int("KAIXUPUSH_JOB_MAX_ATTEMPTS", 8))
    kaixupush_job_backoff_s: float = field(default_factory=lambda: _float("KAIXUPUSH_JOB_BACKOFF_S", 5.0))
    kaixupush_job_backoff_max_s: float = field(
        default_factory=lambda: _float("KAIXUPUSH_JOB_BACKOFF_MAX_S", 900.0)
    )
    kaixupush_job_lease_s: float = field(default_factory=lambda: _float("KAIXUPUSH_JOB_LEASE_S", 300.0))
    kaixupush_inline_s: float = field(default_factory=lambda: _float("KAIXUPUSH_INLINE_S", 20.0))
    kaixupush_worker_budget_s: float = field(
        default_factory=lambda: _float("KAIXUPUSH_WORKER_BUDGET_S", 20.0)
    )
    kaixupush_retention_h: float = field(default_factory=lambda: _float("KAIXUPUSH_RETENTION_H", 48.0))
    kaixupush_max_file_bytes: int = field(default_factory=lambda: _int("KAIXUPUSH_MAX_FILE_BYTES", 1 << 30))
    kaixupush_push_staging_max_bytes: int = field(
        default_factory=lambda: _int("KAIXUPUSH_PUSH_STAGING_MAX_BYTES", 4 << 30)
    )
    kaixupush_customer_staging_max_bytes: int = field(
        default_factory=lambda: _int("KAIXUPUSH_CUSTOMER_STAGING_MAX_BYTES", 8 << 30)
    )
    kaixupush_open_jobs_per_push: int = field(
        default_factory=lambda: _int("KAIXUPUSH_OPEN_JOBS_PER_PUSH", 16)
    )
    kaixupush_concurrent_per_customer: int = field(
        default_factory=lambda: _int("KAIXUPUSH_CONCURRENT_PER_CUSTOMER", 4)
    )
    kaixupush_status_cache_s: float = field(default_factory=lambda: _float("KAIXUPUSH_STATUS_CACHE_S", 3.0))
    kaixupush_netlify_calls_per_min: int = field(
        default_factory=lambda: _int("KAIXUPUSH_NETLIFY_CALLS_PER_MIN", 300)
    )

    def __post_init__(self) -> None:
        for name, value, low, high in (
            ("LEASE_STEP_TOKENS", self.lease_step_tokens, 16, 1_000_000),
            ("CLAMP_MIN_TOKENS", self.clamp_min_tokens, 1, 1_000_000),
        ):
            if not low <= value <= high:
                raise SystemExit(f"config: {name} must be a whole number from {low} to {high}, got {value}")

    @property
    def demo_enabled(self) -> bool:
        """Whether the demo provider answers here: only when asked (the dev server asks), in
        development settings, and not on AWS Lambda, whatever else is set. A production
        server that somehow gets ``KAIXU_DEMO=1`` still answers the demo model 503
        ``PROVIDER_NOT_CONFIGURED``, as it would a provider without a key."""
        return self.demo and self.environment == "development" and not self.on_aws_lambda

    @property
    def uses_pooler(self) -> bool:
        """A transaction-mode pooler (PgBouncer, Neon's ``-pooler`` host, an RDS Proxy
        endpoint) cannot keep prepared statements across transactions (RDS Proxy pins the
        client to one connection instead), so psycopg must not prepare."""
        url = self.database_url
        return any(mark in url for mark in ("-pooler", "pgbouncer", ":6432", ".proxy-"))


MIN_ADMIN_PASSWORD = 16


def production_problems(cfg: Settings) -> list[str]:
    """What a production deployment must not run with; empty when it may start."""
    if cfg.environment != "production" or not cfg.admin_password:
        return []  # development, or admin access switched off altogether
    problems = []
    if len(cfg.admin_password) < MIN_ADMIN_PASSWORD:
        problems.append(f"ADMIN_PASSWORD must be at least {MIN_ADMIN_PASSWORD} characters")
    if not cfg.admin_token_secret:
        problems.append("ADMIN_TOKEN_SECRET must be set (admin tokens would be signed with the password)")
    return problems


def require_safe_production() -> None:
    """Refuse to start (SystemExit) a production server configured unsafely."""
    problems = production_problems(settings())
    if problems:
        raise SystemExit("refusing to start in production (KAIXU_ENV=production): " + "; ".join(problems))


_current: Settings | None = None


def settings() -> Settings:
    global _current
    if _current is None:
        _current = Settings()
    return _current


def reload() -> Settings:
    """Re-read the environment (the dev server and tests change it at start-up)."""
    global _current
    _current = Settings()
    return _current
