from datetime import UTC, datetime

import pytest

from shared import quarters
from shared.settings import SETTINGS, SettingError, load

BASE = {"SPEECH_ENDPOINT": "https://contoso.cognitiveservices.azure.com/"}


def test_defaults_apply_when_only_the_endpoint_is_set():
    config = load(BASE)
    assert config.speech_endpoint == "https://contoso.cognitiveservices.azure.com"
    assert config.speech_api_version == "2025-10-15"
    assert config.speech_key is None
    assert config.storage.connection_string == "UseDevelopmentStorage=true"
    assert (config.training_container, config.deploy_queue, config.alert_queue) == (
        "training",
        "speech-deployments",
        "speech-alerts",
    )
    assert config.expiry_warning_days == (30, 14, 7, 1)
    assert config.poll_schedule == "0 */5 * * * *" and config.expiry_schedule == "0 0 6 * * *"
    assert config.auto_retrain and config.auto_deploy
    assert config.sas_lifetime_hours == 48
    assert config.alert_webhook_url is None and config.speech_project is None


def test_every_registered_setting_is_read():
    env = {name: "x" for name in SETTINGS}
    with pytest.raises(SettingError):  # "x" is not valid for most; what matters is that load looks at them
        load(env)


@pytest.mark.parametrize(
    "name, value",
    [
        ("SPEECH_ENDPOINT", "contoso"),
        ("EXPIRY_WARNING_DAYS", "30,soon"),
        ("AUTO_DEPLOY", "maybe"),
        ("SAS_LIFETIME_HOURS", "169"),
        ("SAS_LIFETIME_HOURS", "two"),
        ("DEPLOY_QUEUE", "Bad_Queue"),
        ("TRAINING_CONTAINER", "a"),
        ("ALERT_WEBHOOK_URL", "ftp://hooks/secret-token"),
    ],
)
def test_malformed_settings_name_the_setting(name, value):
    with pytest.raises(SettingError) as err:
        load({**BASE, name: value})
    assert name in str(err.value)
    if name == "ALERT_WEBHOOK_URL":
        assert "secret-token" not in str(err.value)  # webhook URLs carry a secret


def test_missing_endpoint_is_a_clear_error():
    with pytest.raises(SettingError, match="SPEECH_ENDPOINT is required"):
        load({})


def test_tiers_are_sorted_descending_and_deduplicated():
    assert load({**BASE, "EXPIRY_WARNING_DAYS": "7, 30,7,1"}).expiry_warning_days == (30, 7, 1)


def test_identity_based_storage_and_key_never_in_repr():
    env = {
        **BASE,
        "SPEECH_KEY": "super-secret-key",
        "AzureWebJobsStorage__blobServiceUri": "https://acct.blob.core.windows.net",
        "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net",
        "AzureWebJobsStorage__clientId": "1111",
    }
    config = load(env)
    assert config.storage.identity_based
    assert config.storage.blob_service_uri == "https://acct.blob.core.windows.net"
    assert config.storage.client_id == "1111"
    assert "super-secret-key" not in repr(config)


@pytest.mark.parametrize(
    "created, quarter_end, expiry",
    [
        ("2026-11-22", "2027-01-15", "2029-01-15"),
        ("2027-01-15", "2027-01-15", "2029-01-15"),  # the last day belongs to its quarter
        ("2027-01-16", "2027-04-15", "2029-04-15"),
        ("2026-12-31", "2027-01-15", "2029-01-15"),
        ("2026-10-15", "2026-10-15", "2028-10-15"),
        ("2026-04-16", "2026-07-15", "2028-07-15"),
    ],
)
def test_quarter_rule(created, quarter_end, expiry):
    moment = datetime.fromisoformat(created + "T12:00:00+00:00")
    assert quarters.quarter_end(moment).date().isoformat() == quarter_end
    assert quarters.custom_model_expiry(moment).date().isoformat() == expiry
    assert quarters.custom_model_expiry(moment).tzinfo == UTC
