"""The messages the Azure Functions host exchanges with the Python worker library, written for this project.

In Azure the Functions host talks gRPC to a small proxy worker, which hands each request to the worker library
(PyPI `azure-functions-runtime`, pinned in requirements.txt) together with a `protos` module holding the message
classes. The library only builds and reads those messages by keyword and attribute (and asks a `oneof` group which
field is set), so this module provides plain Python classes with the same field names: the offline host
(local/runtime.py) passes this module as `protos` and drives the very worker code that runs the app in Azure.

Field names and enum values follow the public Functions language worker protocol (FunctionRpc.proto of
Azure/azure-functions-language-worker-protobuf). Only what the worker library and our host use is here; nothing
is generated or copied from that repository.
"""

from __future__ import annotations

from typing import Any, ClassVar


class Message:
    """A protobuf-like message: keyword construction, attribute access, `WhichOneof` for oneof groups.

    Unset scalar fields read as their defaults, unset maps as {} and unset repeated fields as []; an unknown field
    name is an error (as with protobuf), so a typo in the host or an unexpected use by the worker shows at once.
    """

    FIELDS: ClassVar[dict[str, Any]] = {}  # name -> default (a callable makes a fresh container per message)
    ONEOFS: ClassVar[dict[str, tuple[str, ...]]] = {}  # group name -> its member fields

    def __init__(self, **values: Any) -> None:
        for name in values:
            if name not in self.FIELDS:
                raise TypeError(f"{type(self).__name__} has no field {name!r}")
        self._set = {name for name, value in values.items() if value is not None}
        for name, default in self.FIELDS.items():
            value = values.get(name)
            if value is None:
                value = default() if callable(default) else default
            object.__setattr__(self, name, value)

    def WhichOneof(self, group: str) -> str | None:  # noqa: N802 - the protobuf method name the worker calls
        members = self.ONEOFS.get(group)
        if members is None:
            raise ValueError(f"{type(self).__name__} has no oneof group {group!r}")
        return next((name for name in members if name in self._set), None)

    def HasField(self, name: str) -> bool:  # noqa: N802 - protobuf API
        return name in self._set

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS if name in self._set)
        return f"{type(self).__name__}({shown})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(getattr(self, name) == getattr(other, name) for name in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]


# -- data ------------------------------------------------------------------------------------------------------


_DATA_FIELDS = (
    "string",
    "json",
    "bytes",
    "stream",
    "http",
    "int",
    "double",
    "collection_bytes",
    "collection_string",
    "collection_double",
    "collection_sint64",
    "model_binding_data",
    "collection_model_binding_data",
)


class TypedData(Message):
    """A value crossing the host/worker boundary: exactly one of the `data` fields is set."""

    FIELDS = dict.fromkeys(_DATA_FIELDS)
    ONEOFS = {"data": _DATA_FIELDS}


class ModelBindingData(Message):
    """What the host sends for an SDK-type binding (e.g. a BlobClient): where the resource is, not its bytes."""

    FIELDS = {"version": "", "source": "", "content_type": "", "content": b""}


class ParameterBinding(Message):
    """A named input or output value of an invocation."""

    FIELDS = {"name": "", "data": None, "rpc_shared_memory": None}
    ONEOFS = {"rpc_data": ("data", "rpc_shared_memory")}


class NullableString(Message):
    FIELDS = {"value": ""}


class NullableDouble(Message):
    FIELDS = {"value": 0.0}


class NullableBool(Message):
    FIELDS = {"value": False}


class NullableTimestamp(Message):
    FIELDS = {"value": None}


class RpcHttpCookie(Message):
    class SameSite:
        # The enum value named "None" cannot be a Python identifier; it is set below.
        Lax = 1
        Strict = 2
        ExplicitNone = 3

    FIELDS = {
        "name": "",
        "value": "",
        "domain": None,
        "path": None,
        "expires": None,
        "secure": None,
        "http_only": None,
        "same_site": 0,
        "max_age": None,
    }


setattr(RpcHttpCookie.SameSite, "None", 0)  # noqa: B010 - "None" is the protocol's name for the value 0


class RpcHttp(Message):
    """An HTTP request (trigger input) or response (output)."""

    FIELDS = {
        "method": "",
        "url": "",
        "headers": dict,
        "body": None,
        "params": dict,
        "status_code": "",
        "query": dict,
        "enable_content_negotiation": False,
        "cookies": list,
        "identities": list,
        "nullable_headers": dict,
        "nullable_params": dict,
        "nullable_query": dict,
    }


# -- metadata --------------------------------------------------------------------------------------------------


class BindingInfo(Message):
    """One binding of a function, as the worker reports it in its function metadata."""

    # Direction
    # ("in" is a Python keyword: set below)
    out = 1
    inout = 2
    # DataType
    undefined = 0
    string = 1
    binary = 2
    stream = 3

    FIELDS = {"type": "", "direction": 0, "data_type": 0, "properties": dict}


setattr(BindingInfo, "in", 0)  # noqa: B010 - "in" is the protocol's name for the input direction


class RpcRetryOptions(Message):
    FIELDS = {
        "max_retry_count": 0,
        "delay_interval": None,
        "minimum_interval": None,
        "maximum_interval": None,
        "retry_strategy": 0,
    }


class RpcFunctionMetadata(Message):
    """What the worker tells the host about one function it indexed."""

    FIELDS = {
        "name": "",
        "directory": "",
        "script_file": "",
        "entry_point": "",
        "bindings": dict,
        "is_proxy": False,
        "status": None,
        "language": "",
        "raw_bindings": list,
        "function_id": "",
        "managed_dependency_enabled": False,
        "retry_options": None,
        "properties": dict,
    }


class WorkerMetadata(Message):
    FIELDS = {
        "runtime_name": "",
        "runtime_version": "",
        "worker_version": "",
        "worker_bitness": "",
        "custom_properties": dict,
    }


# -- results ---------------------------------------------------------------------------------------------------


class RpcException(Message):
    FIELDS = {"source": "", "stack_trace": "", "message": "", "is_user_exception": False, "type": ""}


class StatusResult(Message):
    Failure = 0
    Success = 1
    Cancelled = 2

    FIELDS = {"status": 0, "result": "", "exception": None, "logs": list}


class WorkerInitResponse(Message):
    FIELDS = {"worker_version": "", "capabilities": dict, "result": None, "worker_metadata": None}


class FunctionMetadataResponse(Message):
    FIELDS = {"function_metadata_results": list, "result": None, "use_default_metadata_indexing": False}


class FunctionLoadResponse(Message):
    FIELDS = {"function_id": "", "result": None, "is_dependency_downloaded": False}


class FunctionEnvironmentReloadResponse(Message):
    FIELDS = {"worker_metadata": None, "capabilities": dict, "result": None}


class InvocationResponse(Message):
    FIELDS = {"invocation_id": "", "output_data": list, "return_value": None, "result": None}


# -- requests (host -> worker) ---------------------------------------------------------------------------------


class WorkerInitRequest(Message):
    FIELDS = {
        "host_version": "",
        "capabilities": dict,
        "log_categories": dict,
        "worker_directory": "",
        "function_app_directory": "",
    }


class FunctionsMetadataRequest(Message):
    FIELDS = {"function_app_directory": ""}


class FunctionLoadRequest(Message):
    FIELDS = {"function_id": "", "metadata": None, "managed_dependency_enabled": False}


class RpcTraceContext(Message):
    FIELDS = {"trace_parent": "", "trace_state": "", "attributes": dict}


class RetryContext(Message):
    FIELDS = {"retry_count": 0, "max_retry_count": 0, "exception": None}


class InvocationRequest(Message):
    FIELDS = {
        "invocation_id": "",
        "function_id": "",
        "input_data": list,
        "trigger_metadata": dict,
        "trace_context": RpcTraceContext,
        "retry_context": RetryContext,
    }


_REQUESTS = ("worker_init_request", "functions_metadata_request", "function_load_request", "invocation_request")


class StreamingMessage(Message):
    """The envelope of every message on the host/worker stream; one request field is set."""

    FIELDS = {"request_id": "", **dict.fromkeys(_REQUESTS)}
    ONEOFS = {"content": _REQUESTS}


class WorkerRequest:
    """What the proxy worker hands the library for each message: the message and the properties it carries
    along (the `protos` module to build responses with, and the host's address for HTTP streaming)."""

    def __init__(self, request: StreamingMessage, properties: dict[str, Any]) -> None:
        self.request = request
        self.properties = properties
