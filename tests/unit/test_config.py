from __future__ import annotations

import subprocess
import sys

import pytest

from bridge.config import ConfigError, load_settings

API = {
    "FACTURATION_API_LOGIN": "login",
    "FACTURATION_API_KEY": "k3y-very-secret",
    "FACTURATION_FIRM_ID": "42",
    "FACTURATION_USER_AGENT": "Boutique (ops@boutique.fr)",
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(str(tmp_path))  # no stray .env
    for name in list(__import__("os").environ):
        if name.startswith(("BRIDGE_", "FACTURATION_", "STRIPE_", "SHOPIFY_")):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_sqlite_and_the_real_api() -> None:
    settings = load_settings()
    assert settings.database_url == "sqlite:///./var/bridge.db"
    assert settings.api_url == "https://www.facturation.pro"
    assert settings.rate_limit == 600
    assert settings.daily_limit == 10_000
    assert str(settings.timezone) == "Europe/Paris"


def test_secrets_are_comma_separated_for_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_new, whsec_old,")
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRETS", "shpss_a")
    settings = load_settings()
    assert settings.stripe_webhook_secrets == ("whsec_new", "whsec_old")
    assert settings.shopify_webhook_secrets == ("shpss_a",)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FACTURATION_FIRM_ID", "abc", "valid integer"),
        ("FACTURATION_USER_AGENT", "Boutique Éléonore (ops@boutique.fr)", "non-ASCII"),
        ("FACTURATION_USER_AGENT", "Boutique", "contact e-mail address or URL"),
        ("BRIDGE_DATABASE_URL", "mysql://db/bridge", "sqlite:// or postgresql://"),
        ("FACTURATION_API_URL", "ftp://example", "http"),
        ("FACTURATION_RATE_LIMIT", "0", "greater than 0"),
        ("BRIDGE_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("BRIDGE_SQLITE_SYNCHRONOUS", "OFF", "FULL"),
        ("BRIDGE_LEASE_SECONDS", "60", "at least 4 x FACTURATION_TIMEOUT (120 s"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert text.startswith(f"{variable}: ")
    assert message in text
    assert "\n" not in text


def test_calling_the_api_requires_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in API.items():
        monkeypatch.setenv(name, value)
    load_settings().require_api()
    monkeypatch.delenv("FACTURATION_USER_AGENT")
    with pytest.raises(ConfigError, match=r"^FACTURATION_USER_AGENT: required"):
        load_settings().require_api()


def test_a_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    (__import__("pathlib").Path(str(tmp_path)) / ".env").write_text("FACTURATION_FIRM_ID=7\n")
    assert load_settings().firm_id == 7


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in __import__("os").environ.items()
        if not k.startswith(("BRIDGE_", "FACTURATION_", "STRIPE_", "SHOPIFY_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_bad_config_is_one_line_and_exit_2() -> None:
    result = _cli("check-config", env={"FACTURATION_FIRM_ID": "forty-two"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error: FACTURATION_FIRM_ID: ")
    assert "Traceback" not in result.stderr


def test_cli_serve_without_credentials_names_the_missing_variable() -> None:
    result = _cli("serve", env={})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configuration error: FACTURATION_API_LOGIN: required to call the Facturation.pro API"
    )


def test_check_config_masks_secrets() -> None:
    env = {
        **API,
        "STRIPE_WEBHOOK_SECRETS": "whsec_abcdef123,whsec_old456789",
        "BRIDGE_ADMIN_TOKEN": "admin-token-xyz",
        "BRIDGE_DATABASE_URL": "postgresql://bridge:pg-pass-123@db/bridge",
    }
    result = _cli("check-config", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "FACTURATION_FIRM_ID=42" in out
    assert "STRIPE_WEBHOOK_SECRETS=****** (2 set)" in out
    assert "BRIDGE_DATABASE_URL=postgresql://bridge:******@db/bridge" in out
    for secret in (
        "k3y-very-secret",
        "whsec_abcdef123",
        "whsec_old456789",
        "admin-token-xyz",
        "pg-pass-123",
    ):
        assert secret not in out + result.stderr


MASKED_URLS = [
    # (setting, value, shown by check-config, secrets that must not appear)
    ("BRIDGE_DATABASE_URL", "sqlite:///./var/bridge.db", "sqlite:///./var/bridge.db", []),
    ("BRIDGE_DATABASE_URL", "postgresql://bridge:s3cr3t-pw@db/bridge",
     "postgresql://bridge:******@db/bridge", ["s3cr3t-pw"]),
    ("BRIDGE_DATABASE_URL", "postgresql://bridge:p@ss@w0rd@db:5432/bridge",
     "postgresql://bridge:******@db:5432/bridge", ["p@ss", "w0rd"]),
    ("BRIDGE_DATABASE_URL", "postgresql://bridge@db/bridge?password=qu3ry-pw&sslmode=require",
     "postgresql://******@db/bridge?password=******&sslmode=******", ["qu3ry-pw"]),
    ("BRIDGE_DATABASE_URL", "postgresql:///bridge?host=/run/pg&user=b&password=sock-pw",
     "postgresql:///bridge?host=******&user=******&password=******", ["sock-pw"]),
    ("BRIDGE_DATABASE_URL", "postgresql://bridge:pw?with/odd#chars@db/bridge",
     "postgresql://bridge:******@db/bridge", ["pw?with", "odd#chars"]),
    ("BRIDGE_DATABASE_URL", "postgresql://bridge:x@db/bridge?application_name=ops@shop&sslkey=k1",
     "postgresql://bridge:******@db/bridge?application_name=******&sslkey=******", ["k1"]),
    ("FACTURATION_API_URL", "https://user:api-pass@sandbox.example",
     "https://user:******@sandbox.example", ["api-pass"]),
    ("FACTURATION_API_URL", "https://bare-t0ken@sandbox.example/v1",
     "https://******@sandbox.example/v1", ["bare-t0ken"]),
    ("FACTURATION_API_URL", "https://www.facturation.pro", "https://www.facturation.pro", []),
    ("STRIPE_API_BASE", "http://127.0.0.1:12111?key=sk_test_q", "http://127.0.0.1:12111?key=******",
     ["sk_test_q"]),
    ("BRIDGE_VIES_URL", "https://proxy:vi3s-pw@vies.example/rest-api",
     "https://proxy:******@vies.example/rest-api", ["vi3s-pw"]),
]  # fmt: skip


@pytest.mark.parametrize(("setting", "value", "shown", "secrets"), MASKED_URLS)
def test_check_config_masks_credentials_in_urls(
    monkeypatch: pytest.MonkeyPatch, setting: str, value: str, shown: str, secrets: list[str]
) -> None:
    monkeypatch.setenv(setting, value)
    masked = load_settings().masked()
    assert masked[setting] == shown
    for secret in secrets:
        assert all(secret not in line for line in masked.values())


def test_vies_is_off_by_default_and_its_url_is_checked() -> None:
    settings = load_settings()
    assert (settings.vies_url, settings.vies_timeout) == ("", 10.0)
    on = load_settings(BRIDGE_VIES_URL="https://ec.europa.eu/taxation_customs/vies/rest-api/")
    assert on.vies_url == "https://ec.europa.eu/taxation_customs/vies/rest-api"
    with pytest.raises(ConfigError, match=r"^BRIDGE_VIES_URL: must be an http"):
        load_settings(BRIDGE_VIES_URL="ec.europa.eu/taxation_customs/vies/rest-api")
    with pytest.raises(ConfigError, match=r"^BRIDGE_VIES_TIMEOUT: "):
        load_settings(BRIDGE_VIES_TIMEOUT="0")
