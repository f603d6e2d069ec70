from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from clicktochat.graph import DEFAULT_TIMEOUT
from clicktochat.settings import MIN_OUTBOX_LEASE, Settings, documented_settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_defaults_then_environment_then_flags() -> None:
    assert Settings.from_env({}).port == 8000
    env = {"CLICKTOCHAT_PORT": "9000", "CLICKTOCHAT_DEMO": "yes", "CLICKTOCHAT_FLUSH_INTERVAL": "0.5"}
    from_env = Settings.from_env(env)
    assert (from_env.port, from_env.demo, from_env.flush_interval) == (9000, True, 0.5)
    assert Settings.from_env(env, port=9100, db=None).port == 9100  # flags win; None means "not given"


def test_empty_variables_mean_default() -> None:
    assert Settings.from_env({"CLICKTOCHAT_PORT": ""}).port == 8000


@pytest.mark.parametrize(("name", "value"), [("PORT", "abc"), ("DEMO", "maybe"), ("FLUSH_INTERVAL", "soon")])
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"CLICKTOCHAT_{name}='{value}' is not a valid"):
        Settings.from_env({f"CLICKTOCHAT_{name}": value})


def test_a_default_region_must_be_a_country() -> None:
    """Found by a new user: with ZZ, every number typed without its country code was refused as
    having "an unknown country code", naming the number rather than the setting."""
    with pytest.raises(ValueError, match="CLICKTOCHAT_DEFAULT_REGION: 'ZZ' is not a country's two-letter code"):
        Settings.from_env({"CLICKTOCHAT_DEFAULT_REGION": "ZZ"})
    assert Settings.from_env({"CLICKTOCHAT_DEFAULT_REGION": "IT"}).default_region == "IT"


def test_signing_keys_are_a_comma_separated_list() -> None:
    old, new = "o" * 32, "n" * 40
    assert Settings(secret_keys=f" {old} , {new} ,").signing_keys == [old, new]


def test_every_setting_is_documented_in_the_readme() -> None:
    for variable, _default, help_text in documented_settings():
        row = next((line for line in README.splitlines() if line.startswith(f"| `{variable}` |")), None)
        assert row is not None, f"{variable} is missing from the README's configuration table"
        assert help_text in row


@pytest.mark.parametrize("name", ["FLUSH_INTERVAL", "CACHE_SIZE", "PORT"])
def test_numbers_must_be_positive(name: str) -> None:
    with pytest.raises(ValueError, match=f"CLICKTOCHAT_{name} must be more than 0"):
        Settings.from_env({f"CLICKTOCHAT_{name}": "0"})


def test_the_outbox_lease_outlasts_a_send_that_waits_for_meta() -> None:
    """Found by a review: with a lease under the Graph API's timeout, a send still waiting for Meta
    was taken back by another sender and sent twice."""
    assert MIN_OUTBOX_LEASE / 2 + DEFAULT_TIMEOUT < 2 * MIN_OUTBOX_LEASE  # renewed at half, taken back at twice
    with pytest.raises(ValueError, match="CLICKTOCHAT_OUTBOX_LEASE must be at least 20 seconds"):
        Settings.from_env({"CLICKTOCHAT_OUTBOX_LEASE": "10"})
    assert Settings.from_env({"CLICKTOCHAT_OUTBOX_LEASE": "20"}).outbox_lease == 20


def test_secret_keys_stay_out_of_the_repr() -> None:
    assert "hunter2" not in repr(Settings(secret_keys="hunter2" * 5))


def test_short_signing_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="each key needs at least 32 characters"):
        Settings.from_env({"CLICKTOCHAT_SECRET_KEYS": "short"})


def test_the_database_is_a_file_or_a_postgresql_url() -> None:
    url = "postgresql://shop:s3cret-pw@db.internal:5432/clicktochat"
    assert Settings.from_env({"CLICKTOCHAT_DB": url}).db == url
    assert Settings(db="postgres://shop@db.internal/clicktochat").db.startswith("postgres://")
    assert Settings(db="/var/lib/clicktochat/clicktochat.db").db == "/var/lib/clicktochat/clicktochat.db"
    with pytest.raises(ValueError, match=r"CLICKTOCHAT_DB \(--db\): give a file path or a postgresql://") as refused:
        Settings(db="mysql://shop:s3cret-pw@db.internal/clicktochat")
    assert "s3cret-pw" not in str(refused.value)


def test_the_database_password_stays_out_of_the_repr() -> None:
    shown = repr(Settings(db="postgresql://shop:s3cret-pw@db.internal:5432/clicktochat", port=9000))
    assert "s3cret-pw" not in shown
    assert "db='postgresql://shop@db.internal:5432/clicktochat'" in shown and "port=9000" in shown


@pytest.mark.parametrize("password", ["Ab@cd", "Ab#cd", "Ab/cd", "Ab@cd#ef/gh:ij"])
def test_a_url_whose_password_needs_encoding_is_refused_without_showing_it(password: str) -> None:
    """Found from outside: part of such a password was read as the host name and printed."""
    with pytest.raises(ValueError, match="must be percent-encoded") as refused:
        Settings(db=f"postgresql://shop:{password}@127.0.0.1:5432/clicktochat")
    assert password.split("@")[0].split("#")[0].split("/")[0] not in str(refused.value).replace("DB", "")
    encoded = quote(password, safe="")
    assert Settings(db=f"postgresql://shop:{encoded}@127.0.0.1:5432/clicktochat").db.endswith("/clicktochat")
    assert Settings(db="postgresql://shop@127.0.0.1:5432/clicktochat")  # no password: ~/.pgpass, PGPASSWORD


@pytest.mark.parametrize("value", ["chat.example.com", "chat.example.com:8000", "ftp://chat.example.com", "https://"])
def test_a_base_url_without_its_scheme_is_refused(value: str) -> None:
    """Found by a new user: `--base-url chat.example.com` printed links without https://."""
    with pytest.raises(ValueError, match="CLICKTOCHAT_BASE_URL .*must start with https://"):
        Settings(base_url=value)
    assert Settings(base_url="https://chat.example.com/").base_url == "https://chat.example.com/"
    assert Settings(base_url="http://127.0.0.1:8000").base_url == "http://127.0.0.1:8000"
