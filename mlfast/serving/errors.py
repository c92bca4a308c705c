"""Errors of the serving domain, raised where they happen (the codec, the
registry, the repository) without knowing HTTP.

``Service`` is the one place that turns them into answers (``STATUS`` in
``serving.service``), as KServe's ``errors.py`` and its handlers do: the
repository never knows that a missing model is a 404.
"""

from __future__ import annotations


class ServingError(Exception):
    """A request the server cannot do, with a message for the client."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInput(ServingError):
    """The request is malformed: not JSON, a missing key, a value that is not
    a number, a tensor whose shape and data disagree."""


class ModelNotFound(ServingError):
    """No model (or version) of that name is served.  ``known`` lists what
    is served, for the answers of routes that need a key; open routes (the
    health checks) do not tell strangers which models exist."""

    def __init__(self, message: str, known: str = ""):
        super().__init__(message)
        self.known = known


class NotReady(ServingError):
    """The model, or the server, cannot answer yet."""


class Conflict(ServingError):
    """The request contradicts the server's state (unloading the only
    version of the default model)."""


class ModelLoadFailed(ServingError):
    """A version asked for could not be loaded (corrupt, refused by the
    loader, wrong SHA-256); the message says why and what is still served."""
