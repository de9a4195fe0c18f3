"""Project checkov checks for the Bicep in infra/ (checkov has no built-in Bicep/ARM check for these).

Run with: checkov -d infra --framework bicep --external-checks-dir infra/policies
Each check passes only on a literal value: a parameter or expression fails, so a setting can't be weakened
by moving it behind a parameter without the check noticing.
"""

from __future__ import annotations

from typing import Any

from checkov.arm.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


def _properties(conf: dict[str, Any]) -> dict[str, Any]:
    props = conf.get("properties")
    return props if isinstance(props, dict) else {}


class StorageSharedKeyDisabled(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Storage accounts disable Shared Key authorization (allowSharedKeyAccess: false)",
            id="CKV_CSA_1",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if conf.get("existing") is True:
            return CheckResult.UNKNOWN
        return CheckResult.PASSED if _properties(conf).get("allowSharedKeyAccess") is False else CheckResult.FAILED


class StorageBlobAnonymousAccessDisabled(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Storage accounts disallow anonymous blob access (allowBlobPublicAccess: false)",
            id="CKV_CSA_2",
            categories=(CheckCategories.NETWORKING,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if conf.get("existing") is True:
            return CheckResult.UNKNOWN
        return CheckResult.PASSED if _properties(conf).get("allowBlobPublicAccess") is False else CheckResult.FAILED


class FunctionAppPackageWithIdentity(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Flex Consumption apps read their deployment package with a managed identity, not a connection string",
            id="CKV_CSA_3",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.Web/sites",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        config = _properties(conf).get("functionAppConfig")
        if not isinstance(config, dict):
            return CheckResult.UNKNOWN  # not a Flex Consumption app
        storage = (config.get("deployment") or {}).get("storage") or {}
        auth = (storage.get("authentication") or {}).get("type") if isinstance(storage, dict) else None
        return CheckResult.PASSED if auth in ("UserAssignedIdentity", "SystemAssignedIdentity") else CheckResult.FAILED


class CognitiveServicesEntraOnly(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Cognitive Services accounts have a custom subdomain (needed for Entra ID auth) and local auth off",
            id="CKV_CSA_4",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.CognitiveServices/accounts",),
        )

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        if conf.get("existing") is True:
            return CheckResult.UNKNOWN
        props = _properties(conf)
        ok = bool(props.get("customSubDomainName")) and props.get("disableLocalAuth") is True
        return CheckResult.PASSED if ok else CheckResult.FAILED


check_storage_shared_key = StorageSharedKeyDisabled()
check_storage_anonymous = StorageBlobAnonymousAccessDisabled()
check_function_package = FunctionAppPackageWithIdentity()
check_cognitive_entra = CognitiveServicesEntraOnly()
