"""All configuration, read from the environment in one place.

Every variable is listed in the README's configuration table. Code never reads
``os.environ`` directly: it calls :func:`settings`, so a reader finds every knob here
and tests can change the environment and :func:`reload`.
"""

from __future__ import annotations

import os
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


class Settings:
    """Every setting, read from the environment when made and read-only after (change the
    environment and :func:`reload`). A plain class: as a frozen dataclass its hundred fields
    cost every cold start about 5 ms to build."""

    def __init__(self) -> None:
        self.build: str = _str("KAIXU_BUILD", "dev")
        self.port: int = _int("PORT", 8888)
        self.data_dir: Path = Path(_str("KAIXU_DATA_DIR") or PROJECT_ROOT / ".data").resolve()
        self.database_url: str = _database_url()
        self.db_pool_max: int = _int("DB_POOL_MAX", 5)
        self.db_timeout_s: float = _float("DB_TIMEOUT_S", 5.0)

        self.environment: str = _str("KAIXU_ENV", "production").lower()
        self.client_ip_header: str = (_str("CLIENT_IP_HEADER") or "x-forwarded-for").lower()
        self.trusted_proxies: tuple[Network, ...] = networks(_list("TRUSTED_PROXIES") or ("127.0.0.1", "::1"))
        self.allowed_origins: tuple[str, ...] = _list("ALLOWED_ORIGINS")
        self.max_body_bytes: int = _int("MAX_BODY_BYTES", 1024 * 1024)

        self.admin_password: str = _str("ADMIN_PASSWORD")
        self.admin_token_secret: str = _str("ADMIN_TOKEN_SECRET")
        self.admin_token_ttl_s: int = _int("ADMIN_TOKEN_TTL_S", 8 * 3600)
        self.admin_login_global_budget: int = _int("ADMIN_LOGIN_GLOBAL_BUDGET", 100)
        self.customer_session_ttl_s: int = _int("CUSTOMER_SESSION_TTL_S", 3600)
        self.portal_max_keys: int = _int("PORTAL_MAX_KEYS", 25)
        self.key_pepper: str = _str("KEY_PEPPER")

        self.default_rpm_limit: int = _int("DEFAULT_RPM_LIMIT", 120)
        self.default_max_concurrent: int = _int("DEFAULT_MAX_CONCURRENT", 32)

        self.openai_base_url: str = _str("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
        self.anthropic_base_url: str = _str("ANTHROPIC_BASE_URL", "https://api.anthropic.com").rstrip("/")
        self.gemini_base_url: str = _str(
            "GEMINI_BASE_URL", "https://generativelanguage.googleapis.com"
        ).rstrip("/")
        self.openai_api_key: str = _str("OPENAI_API_KEY")
        self.anthropic_api_key: str = _str("ANTHROPIC_API_KEY")
        self.gemini_api_key: str = _str("GEMINI_API_KEY")
        self.upstream_timeout_s: float = _float("UPSTREAM_TIMEOUT_S", 120.0)
        self.upstream_max_connections: int = _int("UPSTREAM_MAX_CONNECTIONS", 200)
        self.settle_retry_s: float = _float("SETTLE_RETRY_S", 10.0)
        self.stream_ping_s: float = _float("STREAM_PING_S", 15.0)
        self.stream_usage_wait_s: float = _float("STREAM_USAGE_WAIT_S", 10.0)
        self.stream_write_timeout_s: float = _float("STREAM_WRITE_TIMEOUT_S", 30.0)
        # The demo provider (shared/providers/demo.py): asked for by the dev server, honoured only
        # in development and never on AWS Lambda (see ``demo_enabled``).
        self.demo: bool = _str("KAIXU_DEMO") == "1"
        self.demo_word_delay_s: float = _float("KAIXU_DEMO_WORD_DELAY_S", 0.04)
        self.on_aws_lambda: bool = bool(_str("AWS_LAMBDA_FUNCTION_NAME"))
        # Caps that fit the call (see the README's money section): a stream's reservation is a
        # lease of output tokens, taken and extended in steps; a call the month cannot afford
        # whole is clamped to what it can, never below the minimum.
        self.lease_step_tokens: int = _int("LEASE_STEP_TOKENS", 256)
        self.clamp_min_tokens: int = _int("CLAMP_MIN_TOKENS", 16)

        self.maintenance_secret: str = _str("KAIXU_MAINTENANCE_SECRET")
        self.client_error_token: str = _str("CLIENT_ERROR_TOKEN")
        self.client_error_per_min: int = _int("CLIENT_ERROR_PER_MIN", 30)
        self.client_error_global_per_min: int = _int("CLIENT_ERROR_GLOBAL_PER_MIN", 300)
        self.monitor_retention_days: int = _int("MONITOR_RETENTION_DAYS", 30)

        self.stripe_secret_key: str = _str("STRIPE_SECRET_KEY")
        self.stripe_webhook_secret: str = _str("STRIPE_WEBHOOK_SECRET")
        self.stripe_currency: str = _str("STRIPE_CURRENCY", "usd").lower()
        self.stripe_api_base: str = _str("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
        self.stripe_timeout_s: float = _float("STRIPE_TIMEOUT_S", 20.0)
        self.stripe_success_url: str = _str("STRIPE_SUCCESS_URL")
        self.stripe_cancel_url: str = _str("STRIPE_CANCEL_URL")
        self.public_app_origin: str = _str("PUBLIC_APP_ORIGIN", "http://127.0.0.1:8888").rstrip("/")

        # Who issues the invoices (the printable invoice's header); the address takes "\n" for lines.
        self.operator_name: str = _str("OPERATOR_NAME") or "Kaixu Gateway"
        self.operator_address: str = _str("OPERATOR_ADDRESS").replace("\\n", "\n")
        self.operator_email: str = _str("OPERATOR_EMAIL")

        # "kid:base64-32-byte-key" entries, comma separated; the LAST entry encrypts new secrets.
        self.encryption_keys: tuple[str, ...] = _list("KAIXU_ENCRYPTION_KEYS")
        self.cap_warn_pct: int = _int("CAP_WARN_PCT", 85)
        self.alert_webhook_url: str = _str("ALERT_WEBHOOK_URL")
        self.alert_webhook_secret: str = _str("ALERT_WEBHOOK_SECRET")

        # KaixuPush: deploys to Netlify through the gateway (shared/kaixupush).
        self.netlify_api_base: str = _str("NETLIFY_API_BASE", "https://api.netlify.com/api/v1").rstrip("/")
        self.netlify_auth_token: str = _str("NETLIFY_AUTH_TOKEN")
        self.netlify_timeout_s: float = _float("NETLIFY_TIMEOUT_S", 60.0)
        self.netlify_max_attempts: int = _int("NETLIFY_MAX_ATTEMPTS", 4)
        self.netlify_retry_max_wait_s: float = _float("NETLIFY_RETRY_MAX_WAIT_S", 15.0)
        self.kaixupush_deploys_per_min: int = _int("KAIXUPUSH_DEPLOYS_PER_MIN", 3)
        self.kaixupush_deploys_per_day: int = _int("KAIXUPUSH_DEPLOYS_PER_DAY", 100)
        self.kaixupush_part_bytes: int = _int("KAIXUPUSH_PART_BYTES", 4 * 1024 * 1024)
        self.kaixupush_manifest_max_bytes: int = _int("KAIXUPUSH_MANIFEST_MAX_BYTES", 8 * 1024 * 1024)
        self.kaixupush_poll_interval_s: float = _float("KAIXUPUSH_POLL_INTERVAL_S", 1.5)
        self.kaixupush_prepare_timeout_s: float = _float("KAIXUPUSH_PREPARE_TIMEOUT_S", 60.0)
        self.kaixupush_s3_bucket: str = _str("KAIXUPUSH_S3_BUCKET")
        self.kaixupush_s3_prefix: str = _str("KAIXUPUSH_S3_PREFIX", "kaixupush/")
        self.kaixupush_s3_endpoint_url: str = _str("KAIXUPUSH_S3_ENDPOINT_URL")
        self.kaixupush_worker_secret: str = _str("KAIXUPUSH_WORKER_SECRET")
        self.kaixupush_job_max_attempts: int = _int("KAIXUPUSH_JOB_MAX_ATTEMPTS", 8)
        self.kaixupush_job_backoff_s: float = _float("KAIXUPUSH_JOB_BACKOFF_S", 5.0)
        self.kaixupush_job_backoff_max_s: float = _float("KAIXUPUSH_JOB_BACKOFF_MAX_S", 900.0)
        self.kaixupush_job_lease_s: float = _float("KAIXUPUSH_JOB_LEASE_S", 300.0)
        self.kaixupush_inline_s: float = _float("KAIXUPUSH_INLINE_S", 20.0)
        self.kaixupush_worker_budget_s: float = _float("KAIXUPUSH_WORKER_BUDGET_S", 20.0)
        self.kaixupush_retention_h: float = _float("KAIXUPUSH_RETENTION_H", 48.0)
        self.kaixupush_max_file_bytes: int = _int("KAIXUPUSH_MAX_FILE_BYTES", 1 << 30)
        self.kaixupush_push_staging_max_bytes: int = _int("KAIXUPUSH_PUSH_STAGING_MAX_BYTES", 4 << 30)
        self.kaixupush_customer_staging_max_bytes: int = _int("KAIXUPUSH_CUSTOMER_STAGING_MAX_BYTES", 8 << 30)
        self.kaixupush_open_jobs_per_push: int = _int("KAIXUPUSH_OPEN_JOBS_PER_PUSH", 16)
        self.kaixupush_concurrent_per_customer: int = _int("KAIXUPUSH_CONCURRENT_PER_CUSTOMER", 4)
        self.kaixupush_status_cache_s: float = _float("KAIXUPUSH_STATUS_CACHE_S", 3.0)
        self.kaixupush_netlify_calls_per_min: int = _int("KAIXUPUSH_NETLIFY_CALLS_PER_MIN", 300)

        for name, value, low, high in (
            ("LEASE_STEP_TOKENS", self.lease_step_tokens, 16, 1_000_000),
            ("CLAMP_MIN_TOKENS", self.clamp_min_tokens, 1, 1_000_000),
        ):
            if not low <= value <= high:
                raise SystemExit(f"config: {name} must be a whole number from {low} to {high}, got {value}")
        self._sealed = True

    def __setattr__(self, name: str, value: object) -> None:
        if getattr(self, "_sealed", False):
            raise AttributeError(f"settings are read-only: change the environment and reload() ({name})")
        super().__setattr__(name, value)

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
