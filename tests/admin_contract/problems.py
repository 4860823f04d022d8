"""Schemathesis checks of tests/admin_contract.rs, loaded through SCHEMATHESIS_HOOKS.

The built-in content_type_conformance skips some answers: those whose status the operation does
not document, and the probes of unsupported methods and malformed requests. Every error under
/admin/v1 must be an RFC 9457 problem whatever provoked it, so this check looks at all of them.
"""

import json

import schemathesis

PROBLEM = "application/problem+json"
TYPE_PREFIX = "urn:vhod:problem:"


@schemathesis.check
def admin_errors_are_problems(ctx, response, case):
    if response.status_code < 400:
        return None
    values = response.headers.get("content-type") or []
    media = values[0].split(";")[0].strip().lower() if values else None
    if media != PROBLEM:
        raise AssertionError(
            f"a {response.status_code} answered as {media or 'no content type'}, not {PROBLEM}"
        )
    try:
        body = json.loads(response.content)
    except ValueError as e:
        raise AssertionError(f"a {response.status_code} problem that is not JSON: {e}")
    if not isinstance(body, dict):
        raise AssertionError(f"a {response.status_code} problem that is not an object: {body!r}")
    kind = body.get("type")
    if not isinstance(kind, str) or not kind.startswith(TYPE_PREFIX):
        raise AssertionError(f"a problem whose type is not {TYPE_PREFIX}<code>: {body!r}")
    if not isinstance(body.get("title"), str):
        raise AssertionError(f"a problem without a title: {body!r}")
    if body.get("status") != response.status_code:
        raise AssertionError(
            f"a problem whose status {body.get('status')!r} is not the answer's {response.status_code}"
        )
    return None
