"""User-facing errors: one paragraph that names the file, field, flag or component at fault."""

from __future__ import annotations


class K8saiError(Exception):
    """An error a user can act on; printed as one paragraph, never as a traceback."""


class ProfileError(K8saiError):
    """A cluster profile is missing, unknown or malformed."""


class ClusterError(K8saiError):
    """A cluster cannot be created, reached or used."""


class BuildError(K8saiError):
    """An upstream component could not be built from its Go module."""


class NotApplicable(K8saiError):
    """A check cannot run on this cluster (a profile field is unset, an address does not answer,
    a capability is missing). Library code raises it; the plugin reports the test as skipped
    with this message as the reason."""


class FailedEarlier(K8saiError):
    """Shared runs that a test needs failed earlier in the session. The plugin fails the test
    with this one paragraph (no traceback): the first test that asked showed the real one."""
